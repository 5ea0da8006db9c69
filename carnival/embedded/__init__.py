"""Embedded single-node servers (Kafka KRaft, Redis/Valkey, Ray head) for dev and tests."""

from __future__ import annotations

from carnival.embedded.kafka import KafkaServer, create_topics, ensure_kafka_jars
from carnival.embedded.prereqs import MissingPrerequisite, check_java, check_maven
from carnival.embedded.process import ManagedProcess, ProcessFailed, free_port
from carnival.embedded.ray_head import RayHead
from carnival.embedded.redis import RedisServer

__all__ = [
    "KafkaServer",
    "ManagedProcess",
    "MissingPrerequisite",
    "ProcessFailed",
    "RayHead",
    "RedisServer",
    "check_java",
    "check_maven",
    "create_topics",
    "ensure_kafka_jars",
    "free_port",
]
