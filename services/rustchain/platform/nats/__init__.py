"""NATS: the embedded server, its auth callout, JetStream, and the relay of stored events."""
