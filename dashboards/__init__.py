"""Grafana dashboards (JSON provisioned by docker-compose) and their generator."""
