"""The root command group; each verb lives in its own module and registers here."""

from __future__ import annotations

import click

from rustchain import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rustchain")
def app() -> None:
    """RustChain: verify and run AI-agent missions."""


# Verb modules import `app`, so they are imported after it is defined.
from rustchain.cli import (  # noqa: E402, F401
    audit,
    events,
    mission_admin,
    missions,
    run,
    serve,
    token,
    up,
    verify,
)
