"""Faust's aiokafka transport with batched fetches.

Faust asks the broker for new outcomes with ``fetch.min.bytes`` 1: under load
that is one fetch per batch the dispatcher produces, a few hundred a second,
each costing this process and the broker CPU that the draw path needs on a
small machine. Rows reach ClickHouse in half-second batches anyway
(``streams.agents.BATCH_WITHIN_S``), so fetches here wait for ``FETCH_MIN_BYTES``
or ``FETCH_MAX_WAIT_MS``, whichever comes first.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MIN_BYTES = 256 * 1024
FETCH_MAX_WAIT_MS = 200


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes neither setting through; aiokafka reads both when it starts.
        consumer._fetch_min_bytes = FETCH_MIN_BYTES
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
