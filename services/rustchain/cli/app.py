"""The root command group; each verb lives in its own module and registers here."""

from __future__ import annotations

import os

import click

from rustchain import __version__
from rustchain.platform.tokens import TOKEN_VARIABLE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rustchain")
@click.option(
    "--token",
    "credential",
    metavar="JWT",
    help="The credential to call a deployment with (default: RUSTCHAIN_TOKEN, else the "
    "embedded deployment's admin token).",
)
def app(credential: str | None) -> None:
    """RustChain: verify and run AI-agent missions."""
    if credential:
        # Every verb, and the processes it starts, read the credential from the environment.
        os.environ[TOKEN_VARIABLE] = credential


# Verb modules import `app`, so they are imported after it is defined.
from rustchain.cli import (  # noqa: E402, F401
    audit,
    audit_log,
    events,
    mission_admin,
    missions,
    run,
    secret,
    serve,
    token,
    trainer,
    up,
    verify,
)
