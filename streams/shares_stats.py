"""Share figures of one activity: clicks and conversions, in all and per channel.

Counts are ``uniqExact(event_id)``: a click or a conversion delivered twice
(Kafka is at-least-once) counts once, before or after the table's merges.
"""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from domain.shares import CHANNELS

_BY_CHANNEL_SQL = """
SELECT channel,
       uniqExactIf(event_id, kind = 'share_click') AS clicks,
       uniqExactIf(event_id, kind = 'conversion') AS conversions
FROM share_events
WHERE tenant_id = {tenant_id:String} AND activity_id = {activity_id:String}
GROUP BY channel
"""


def share_stats(client: Client, tenant_id: str, activity_id: str) -> dict[str, Any]:
    """``clicks`` and ``conversions`` of the activity's share links, and
    ``channels``: one entry per channel (every channel, zeros included)."""
    params = {"tenant_id": tenant_id, "activity_id": activity_id}
    rows = client.query(_BY_CHANNEL_SQL, parameters=params).result_rows
    found = {channel: (int(clicks), int(conv)) for channel, clicks, conv in rows}
    channels = [
        {"channel": c, "clicks": found.get(c, (0, 0))[0], "conversions": found.get(c, (0, 0))[1]}
        for c in CHANNELS
    ]
    return {
        "tenant_id": tenant_id,
        "activity_id": activity_id,
        "clicks": sum(c["clicks"] for c in channels),
        "conversions": sum(c["conversions"] for c in channels),
        "channels": channels,
    }
