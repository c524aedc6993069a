"""Access: credentials, NATS permissions and quotas (who may read and write what)."""
