"""The `rustchain` command."""

from __future__ import annotations

import sys

from rustchain.cli.app import app


def main() -> None:
    """Entry point of the `rustchain` console script: never a traceback, always an exit code."""
    try:
        app.main(prog_name="rustchain", standalone_mode=True)
    except KeyboardInterrupt:
        sys.stderr.write("rustchain: interrupted\n")
        sys.exit(130)
    except Exception as error:
        sys.stderr.write(f"rustchain: internal error: {type(error).__name__}: {error}\n")
        sys.exit(1)
