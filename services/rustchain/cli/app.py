"""The root command group. Verbs are registered one way, by name in VERBS, and each verb's module
is imported only when that verb runs: `rustchain --version` and `rustchain validate` load no gRPC,
NATS or solver.

To add a verb, write it as a plain `@click.command()` (or `@click.group()`) in its own module under
rustchain.cli and name it in VERBS; the module never imports this one.
"""

from __future__ import annotations

import gc
import importlib
import os
from collections.abc import Mapping
from typing import Any

import click

from rustchain import __version__

VERBS: Mapping[str, str] = {
    "artifact": "rustchain.cli.artifact:artifact",
    "audit": "rustchain.cli.audit:audit",
    "cancel": "rustchain.cli.mission_admin:cancel",
    "events": "rustchain.cli.events:events",
    "missions": "rustchain.cli.mission_admin:missions",
    "plan": "rustchain.cli.missions:plan",
    "run": "rustchain.cli.run:run",
    "schema": "rustchain.cli.missions:schema",
    "secret": "rustchain.cli.secret:secret",
    "serve": "rustchain.cli.serve:serve_command",
    "status": "rustchain.cli.mission_admin:status",
    "token": "rustchain.cli.token:token",
    "trainer": "rustchain.cli.trainer:trainer",
    "up": "rustchain.cli.up:up",
    "validate": "rustchain.cli.missions:validate",
    "verify": "rustchain.cli.verify:verify",
}
"""Each verb's command, as `module:attribute`."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported from their modules on first use."""

    def __init__(self, *args: Any, verbs: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verbs = verbs

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every verb, by name, without importing any of them."""
        return sorted({*super().list_commands(ctx), *self.verbs})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The verb's command, its module imported now; None for an unknown name."""
        if cmd_name not in self.verbs:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = self.verbs[cmd_name].partition(":")
        # Importing a verb builds tens of thousands of objects that live as long as the process
        # (modules, classes, functions): the cycle collector would only rescan them, during the
        # imports and after. It is paused while they load, and they are then set apart (frozen)
        # so later collections skip them.
        collecting = gc.isenabled()
        gc.disable()
        try:
            module = importlib.import_module(module_name)
        finally:
            gc.freeze()
            if collecting:
                gc.enable()
        command = getattr(module, attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.verbs[cmd_name]} is not a click command")
        return command


@click.group(
    cls=LazyGroup,
    verbs=VERBS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="rustchain")
@click.option(
    "--token",
    "credential",
    metavar="JWT",
    help="The credential to call a deployment with (default: RUSTCHAIN_TOKEN, else the "
    "embedded deployment's admin token); a tenant's token also names the tenant.",
)
def app(credential: str | None) -> None:
    """RustChain: verify and run AI-agent missions."""
    if credential:
        # Imported only here: the JWT and key libraries behind it would slow every command.
        from rustchain.platform.credentials.tokens import TOKEN_VARIABLE

        # Every verb, and the processes it starts, read the credential from the environment.
        os.environ[TOKEN_VARIABLE] = credential
