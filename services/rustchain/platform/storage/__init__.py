"""Storage: the event store (SQLite or PostgreSQL), memory, secrets, checkpoints and the home
folder.
"""
