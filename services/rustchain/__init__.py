"""RustChain: event-sourced runtime for AI-agent missions."""

__version__ = "0.1.0"
