"""`rustchain verify`: prove a mission safe under a policy, or show how it is not."""

from __future__ import annotations

import sys

import click

from rustchain.cli import exit_codes
from rustchain.verifier.policy_files import PolicyFileError, load_policy
from rustchain.verifier.settings import DEFAULT_TIMEOUT_MS, VerifierSettings


@click.command()
@click.argument("file")
@click.option(
    "--policy",
    "policy_path",
    metavar="P",
    help="The tenant's policy (YAML); default: the default policy.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.option(
    "--timeout-ms",
    type=click.IntRange(1, 600_000),
    default=DEFAULT_TIMEOUT_MS,
    show_default=True,
    help="Time one solver query may take; an undecided rule refuses the mission.",
)
def verify(file: str, policy_path: str | None, as_json: bool, timeout_ms: int) -> None:
    """Prove FILE safe under a policy; print each violation as FILE:LINE:COL: error: [rule] ..."""
    try:
        policy = load_policy(policy_path)
    except PolicyFileError as error:
        for diagnostic in error.diagnostics:
            click.echo(diagnostic.render(), err=True)
        sys.exit(exit_codes.USAGE)
    # The solver is imported only by the verb that needs it, not by every `rustchain` command.
    from rustchain.verifier.application import verify_file

    result = verify_file(file, policy, VerifierSettings(timeout_ms=timeout_ms))
    for diagnostic in result.compilation.diagnostics:
        click.echo(diagnostic.render(), err=True)
    verdict = result.verdict
    if verdict is None:
        click.echo(f"{file}: invalid ({len(result.compilation.errors)} error(s))", err=True)
        sys.exit(exit_codes.MISSION_AT_FAULT)
    if as_json:
        click.echo(verdict.to_json())
    else:
        *findings, summary = verdict.render()
        for line in findings:
            click.echo(line, err=True)
        click.echo(summary, err=not verdict.safe)
    sys.exit(exit_codes.OK if verdict.safe else exit_codes.MISSION_AT_FAULT)
