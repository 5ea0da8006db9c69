"""The `carnival bench` command group: one sub-command per benchmark module."""

from __future__ import annotations

import typer

from carnival.bench import claims, draws, freshness, http, redemptions

bench_app = typer.Typer(no_args_is_help=True, help="Measure Carnival's paths on this machine.")
bench_app.command("draws")(draws.draws_cmd)
bench_app.command("claims")(claims.claims_cmd)
bench_app.command("http")(http.http_cmd)
bench_app.command("redemptions")(redemptions.redemptions_cmd)
bench_app.command("freshness")(freshness.freshness_cmd)
