"""The platform adapters shared by services."""
