"""The relay: committed events out to the world (partners' webhooks, upstream channels)."""
