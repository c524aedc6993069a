"""`rustchain audit replay|verify|export|reexecute`: what auditors run (docs/audit.md)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from rustchain.audit.artifacts import (
    verify_export_artifacts,
    verify_jetstream_artifacts,
    verify_store_artifacts,
    write_export_artifacts,
)
from rustchain.audit.history import (
    AUDITED_STORES,
    ExportError,
    read_export,
    select_missions,
    store_events,
    write_export,
)
from rustchain.audit.jetstream import stream_events
from rustchain.cli import exit_codes
from rustchain.cli.audit_checkpoints import export_logs, verify_export_logs, verify_store_logs
from rustchain.cli.audit_log import checkpoint_command, prove_command
from rustchain.cli.common import fail as _fail
from rustchain.cli.common import home_nats_url, tenant_option
from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.plans.artifacts import ArtifactError
from rustchain.domain.runs.audit import TimelineEntry, timeline, verify_history
from rustchain.domain.runs.reexecution import NOT_RECORDED, SAME, Reexecution, reexecute, run_facts
from rustchain.domain.runs.stream_agreement import compare_with_stream
from rustchain.platform.nats.jetstream import NatsUnavailableError
from rustchain.platform.nats.server import NATS_URL_VARIABLE
from rustchain.platform.storage.event_store import EventStoreError
from rustchain.platform.telemetry.audit_spans import AuditSpan, audit_span
from rustchain.platform.telemetry.setup import TelemetrySettingError


def _events(tenant: str, mission_id: str | None) -> list[EventEnvelope]:
    try:
        return store_events(tenant, mission_id)
    except EventStoreError as error:
        _fail(f"cannot read the event stores: {error}", exit_codes.UNREACHABLE)
    except CorruptHistoryError as error:  # an envelope that is not one: the history is broken
        _fail(str(error), exit_codes.MISSION_AT_FAULT)


@contextlib.contextmanager
def _traced(name: str, tenant: str, mission_id: str | None) -> Iterator[AuditSpan]:
    """The command's span, linked to the traces of the events it reads (docs/observability.md)."""
    attributes = {"rustchain.tenant": tenant}
    if mission_id is not None:
        attributes["rustchain.mission.id"] = mission_id
    with contextlib.ExitStack() as stack:
        try:
            span = stack.enter_context(audit_span(name, **attributes))
        except TelemetrySettingError as error:
            _fail(str(error), exit_codes.USAGE)
        yield span


@click.group()
def audit() -> None:
    """Replay, verify and export mission histories, without re-running anything."""


@audit.command()
@click.argument("mission_id")
@tenant_option("The mission's tenant.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one fact per line.")
def replay(mission_id: str, tenant: str, as_json: bool) -> None:
    """A mission's timeline from its recorded facts: verdict, steps, attempts, outputs."""
    with _traced("audit replay", tenant, mission_id) as span:
        events = _events(tenant, mission_id)
        span.read(events)
        try:
            entries = timeline(events)
        except CorruptHistoryError as error:
            _fail(
                f"mission '{mission_id}': a recorded fact cannot be read: {error}",
                exit_codes.MISSION_AT_FAULT,
            )
        if not entries:
            _fail(f"no mission '{mission_id}' for tenant '{tenant}'", exit_codes.MISSION_AT_FAULT)
        if as_json:
            for entry in entries:
                record = {
                    "at": entry.at.isoformat(),
                    "service": entry.service,
                    "type": entry.type,
                    "step_id": entry.step_id,
                    "detail": entry.detail,
                }
                click.echo(json.dumps(record, sort_keys=True))
        else:
            _print_timeline(mission_id, tenant, entries)
        # The artifacts the facts reference are read back and checked against their SHA-256.
        problems = verify_store_artifacts(events)
        for problem in problems:
            click.echo(f"broken: {problem}", err=True)
        if problems:
            _fail(
                f"{len(problems)} reference(s) to a missing or altered artifact",
                exit_codes.MISSION_AT_FAULT,
            )


def _print_timeline(mission_id: str, tenant: str, entries: list[TimelineEntry]) -> None:
    table = Table(title=f"mission {mission_id} ({tenant})")
    for column in ("time (UTC)", "service", "fact", "step", "detail"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            f"{entry.at:%H:%M:%S.%f}"[:-3],
            entry.service,
            entry.type,
            entry.step_id or "",
            entry.detail,
        )
    Console(highlight=False).print(table)


SKIPPED = "the JetStream comparison was skipped"


def _jetstream_url(nats_url: str | None, required: bool) -> tuple[str | None, str]:
    """The NATS of this home's deployment to compare with, or None and the line saying it was
    skipped: a local home is never compared with whatever else listens on this machine."""
    url, source = home_nats_url(nats_url)
    if url is not None:
        return url, ""
    if required:
        _fail(
            f"--jetstream: no JetStream to compare with: {source}; start the deployment"
            " (`rustchain up`) or pass --nats-url",
            exit_codes.UNREACHABLE,
        )
    return None, f"{SKIPPED}: {source}"


def _compare_with_jetstream(
    events: list[EventEnvelope], tenant: str, mission_id: str | None, url: str, required: bool
) -> tuple[list[str], str]:
    """Problems found comparing the stores with JetStream, and one line on what was compared."""
    try:
        streamed = stream_events(url, tenant, mission_id)
        # Each artifact an event in the stream references must be in the tenant's bucket, whole.
        bucket_problems = verify_jetstream_artifacts(url, tenant, streamed)
    except NatsUnavailableError as error:
        if required:
            _fail(
                f"--jetstream: the comparison with JetStream failed: {error}",
                exit_codes.UNREACHABLE,
            )
        return [], f"{SKIPPED}: {error}"
    comparison = compare_with_stream(events, streamed, AUDITED_STORES)
    problems = [finding.describe() for finding in comparison.findings] + bucket_problems
    return problems, (
        f"compared {comparison.stored} stored events of {comparison.chains} chain(s) with"
        f" {comparison.streamed} in JetStream at {url}"
    )


@audit.command(name="verify")
@click.argument("mission_id", required=False)
@tenant_option("Whose history.")
@click.option(
    "--export",
    "export_dir",
    type=click.Path(path_type=Path),
    help="Verify an export folder offline instead.",
)
@click.option(
    "--jetstream/--no-jetstream",
    "jetstream",
    default=None,
    help="Require the comparison of the stores with JetStream (exit 3 if NATS is unreachable),"
    " or skip it. Default: compare with the JetStream of this home's deployment (or --nats-url,"
    " NATS_URL) when it is reachable, else say it was skipped.",
)
@click.option("--nats-url", help=f"The NATS server (default: ${NATS_URL_VARIABLE}).")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(path_type=Path),
    help="A checkpoint file saved by `audit checkpoint`: prove today's logs extend it.",
)
def verify_history_command(
    mission_id: str | None,
    tenant: str,
    export_dir: Path | None,
    jetstream: bool | None,
    nats_url: str | None,
    checkpoint_file: Path | None,
) -> None:
    """Prove a history whole and untouched, as JetStream holds it, and every run verified SAFE."""
    with _traced("audit verify", tenant, mission_id) as span:
        problems: list[str] = []
        compared = "JetStream not compared (--no-jetstream)"
        url: str | None = None
        if export_dir is not None:
            if jetstream:
                raise click.UsageError(
                    "--jetstream compares the stores; an export is verified offline"
                )
            try:
                events, problems = read_export(export_dir)
            except ExportError as error:
                _fail(str(error), exit_codes.MISSION_AT_FAULT)
            proven, log_problems = verify_export_logs(export_dir, events, checkpoint_file)
        else:
            events = _events(tenant, mission_id)
            if jetstream is not False:
                url, compared = _jetstream_url(nats_url, bool(jetstream))
            proven, log_problems = verify_store_logs(tenant, checkpoint_file, url)
        span.read(events)
        problems += log_problems
        for line in proven:
            click.echo(line, err=True)
        problems += [finding.describe() for finding in verify_history(events)]
        problems += (
            verify_store_artifacts(events)
            if export_dir is None
            else verify_export_artifacts(export_dir, events)
        )
        agree = ""
        if url is not None:
            streamed, compared = _compare_with_jetstream(
                events, tenant, mission_id, url, bool(jetstream)
            )
            problems += streamed
            agree = "" if compared.startswith(SKIPPED) else ", the stores and JetStream agree"
        if export_dir is None:
            click.echo(f"jetstream: {compared}", err=True)
        for problem in problems:
            click.echo(f"broken: {problem}", err=True)
        missions = len({(e.tenant, e.mission_id) for e in events})
        if problems:
            _fail(
                f"{len(problems)} problem(s) in {len(events)} events of {missions} mission(s)",
                exit_codes.MISSION_AT_FAULT,
            )
        click.echo(
            f"verified: {len(events)} events of {missions} mission(s); every chain whole and "
            f"untouched{agree}, every run proven SAFE before its first step"
        )


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"expected an ISO date or time, found {text!r}") from None
    return moment if moment.tzinfo else moment.astimezone()


@audit.command()
@tenant_option("Whose history.", required=True)
@click.option("--since", help="Missions started at or after this ISO time.")
@click.option("--until", help="Missions started before this ISO time.")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="The folder to write."
)
def export(tenant: str, since: str | None, until: str | None, out_dir: Path) -> None:
    """Write a tenant's whole missions as JSON Lines plus a manifest of counts and chain heads."""
    with _traced("audit export", tenant, None) as span:
        events = select_missions(_events(tenant, None), _moment(since), _moment(until))
        span.read(events)
        summary = write_export(events, tenant, out_dir)
        try:
            artifacts = write_export_artifacts(out_dir, events)
        except ArtifactError as error:
            _fail(f"cannot export an artifact: {error}", exit_codes.MISSION_AT_FAULT)
        logs = export_logs(out_dir, tenant, selected=since is not None or until is not None)
        click.echo(
            f"exported {summary.events} events of {summary.missions} mission(s) "
            f"({summary.chains} chains) and {artifacts} artifact(s) to {out_dir}, {logs}"
        )


def _reexecution_records(report: Reexecution) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [{"problem": problem} for problem in report.problems]
    for step in report.steps:
        if step.never_started is not None:
            records.append(
                {"step_id": step.step_id, "status": "never started", "reason": step.never_started}
            )
        records += [
            {
                "step_id": attempt.step_id,
                "attempt": attempt.attempt,
                "status": attempt.status,
                "divergences": [
                    {"path": d.path, "recorded": d.recorded, "now": d.now}
                    for d in attempt.divergences
                ],
            }
            for attempt in step.attempts
        ]
    return records


def _print_reexecution(report: Reexecution) -> None:
    width = max((len(step.step_id) for step in report.steps), default=0)
    for step in report.steps:
        if step.never_started is not None:
            click.echo(f"{step.step_id:<{width}}  never started: {step.never_started}")
        for attempt in step.attempts:
            verdict = {
                SAME: "inputs the same",
                NOT_RECORDED: "inputs not recorded (StepStarted v1): not compared",
            }.get(attempt.status, f"DIVERGED in {len(attempt.divergences)} parameter(s)")
            click.echo(f"{step.step_id:<{width}}  attempt {attempt.attempt}: {verdict}")


@audit.command(name="reexecute")
@click.argument("mission_id")
@tenant_option("The mission's tenant.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one attempt or step per line.")
def reexecute_command(mission_id: str, tenant: str, as_json: bool) -> None:
    """Re-render each recorded attempt's inputs from the facts before it; nothing is run."""
    with _traced("audit reexecute", tenant, mission_id) as span:
        events = _events(tenant, mission_id)
        span.read(events)
        try:
            facts = run_facts(events)
        except CorruptHistoryError as error:  # a version without a path, or a payload that misfits
            _fail(
                f"mission '{mission_id}': a recorded fact cannot be read: {error}",
                exit_codes.MISSION_AT_FAULT,
            )
        if not facts:
            _fail(f"no mission '{mission_id}' for tenant '{tenant}'", exit_codes.MISSION_AT_FAULT)
        report = reexecute(facts)
        if as_json:
            for record in _reexecution_records(report):
                click.echo(json.dumps(record, sort_keys=True, default=repr))
        else:
            _print_reexecution(report)
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        for divergence in report.divergences:
            click.echo(f"diverged: {divergence.describe()}", err=True)
        attempts = report.attempts
        unrecorded = sum(1 for a in attempts if a.status == NOT_RECORDED)
        if not report.agrees:
            diverged = sum(1 for a in attempts if a.divergences)
            _fail(
                f"mission {mission_id}: {len(report.divergences)} divergence(s) in {diverged} of"
                f" {len(attempts)} attempt(s), {len(report.problems)} problem(s)",
                exit_codes.MISSION_AT_FAULT,
            )
        not_compared = f"; {unrecorded} recorded no inputs, not compared" if unrecorded else ""
        click.echo(
            f"reexecuted: {len(attempts) - unrecorded} attempt(s) of {len(report.steps)} step(s)"
            f" re-rendered from the recorded facts, every recorded input the same{not_compared};"
            " no side effect run",
            err=as_json,
        )


# `audit checkpoint` and `audit prove` live in their own module.
audit.add_command(checkpoint_command)
audit.add_command(prove_command)
