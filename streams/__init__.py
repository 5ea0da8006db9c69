"""Stage 4 of the data flow: outcome events from Kafka into ClickHouse (Faust)."""
