"""AMQP 0-9-1 analyser (RabbitMQ and other brokers)."""
from worker.protos.amqp.plugin import AmqpPlugin

__all__ = ["AmqpPlugin"]
