"""`carnival chaos`: a mixed flash-sale load across a SIGKILL of each process.

One phase per process (api, dispatcher, the Ray actor worker, the streams
worker, Redis, Kafka), each on its own tenant of one embedded stack: the load
runs, the process is killed mid-load and restarted, the stack drains, and the
invariants are checked on what the load collected (``checks``) and on the
ledger, the outcome topics and ClickHouse (``carnival reconcile``'s code).
"""
