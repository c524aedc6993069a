"""Large outputs become content-addressed artifacts: events stay small, the bytes are relayed to
the tenant's JetStream object store, handed to later steps, and verified by their SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import sqlite3
from pathlib import Path

import pytest

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.events.names import object_bucket, object_stream
from rustchain.domain.plans.artifacts import ArtifactRef, externalize
from rustchain.domain.policy.model import CommandPolicy, Policy
from rustchain.domain.runs.run_events import MissionFinished, StepSucceeded, run_fact
from rustchain.domain.runs.trajectory import build_trajectory
from rustchain.executor.application import ExecutorApplication
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.generated.rustchain.planner.v1 import planner_pb2, planner_pb2_grpc
from rustchain.platform.grpc.client import tenant_metadata
from rustchain.platform.nats.artifact_relay import ensure_bucket
from rustchain.platform.nats.jetstream import StreamSettings, connect
from rustchain.platform.nats.reconcile import reconcile
from rustchain.platform.nats.relay import JetStreamRelay, RelaySettings
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    new_cipher_key,
    open_event_store,
)
from rustchain.steps import default_registry
from tests.conditions import wait_until
from tests.e2e.test_artifacts import SHA, home_with_mission
from tests.e2e.test_run import rustchain
from tests.integration.event_helpers import make_draft, stream_messages
from tests.integration.grpc_helpers import running_services
from tests.integration.sandbox_helpers import sandbox
from tests.unit.compile_helpers import plan_of

MB2 = 2_000_000
MB50 = 50_000_000
MISSION = f"""\
version: "1.0"
name: large outputs
steps:
  - id: two
    step_type: command
    parameters: {{command: printf, args: ["%{MB2}s", x], max_output_bytes: 60000000}}
  - id: fifty
    step_type: command
    parameters: {{command: printf, args: ["%{MB50}s", x], max_output_bytes: 60000000}}
  - id: copy
    step_type: create_file
    depends_on: [two]
    parameters: {{path: copy.txt, content: "{{two.output}}"}}
"""


def _policy(tenant: str) -> Policy:
    return Policy(commands=CommandPolicy(max_output_bytes=60_000_000))


def _executor(settings: EventStoreSettings) -> ExecutorApplication:
    store = open_event_store(settings)
    return build_executor(
        {**os.environ, "RUSTCHAIN_HOME": str(settings.home)},
        store,
        registry=default_registry(include_plugins=False),
        policy_for=_policy,
        sandbox=sandbox(),
    )


async def _bucket_objects(url: str, tenant: str) -> dict[str, int]:
    client = await connect(url)
    try:
        bucket = await client.jetstream().object_store(object_bucket(tenant))
        return {info.name: info.size or 0 for info in await bucket.list()}
    finally:
        await client.close()


async def _object(url: str, tenant: str, name: str) -> bytes:
    client = await connect(url)
    try:
        bucket = await client.jetstream().object_store(object_bucket(tenant))
        return (await bucket.get(name)).data or b""
    finally:
        await client.close()


def test_2mb_and_50mb_outputs_are_artifacts_relayed_to_the_tenants_object_store(
    store_settings: EventStoreSettings, nats_server: NatsServer
) -> None:
    executor = _executor(store_settings)
    store = executor.store
    try:
        mission = executor.start("beta", plan_of(MISSION), {})
        run = asyncio.run(executor.drive("beta", mission))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        events = store.mission_events("beta", mission)
        facts = [run_fact(e) for e in events]
        outputs = {f.step_id: f.output for f in facts if isinstance(f, StepSucceeded)}
        assert run.outcome == "succeeded", [f for f in facts if "error" in type(f).__name__]
        # Every event stays small: the outputs are references, never the bytes.
        assert max(len(e.to_json().encode()) for e in events) < 16 * 1024
        two, fifty = ArtifactRef.of_value(outputs["two"]), ArtifactRef.of_value(outputs["fifty"])
        assert two is not None and fifty is not None
        assert (two.size, fifty.size) == (MB2, MB50)
        assert two.sha256 == hashlib.sha256(b" " * (MB2 - 1) + b"x").hexdigest()
        assert two.preview == " " * 200
        [finished] = [f for f in facts if isinstance(f, MissionFinished)]
        assert finished.outcome == "succeeded"
        # The trainer's trajectory keeps the reference, not the 50 MB.
        steps = {step.step_id: step for step in build_trajectory(events).steps}
        assert ArtifactRef.of_value(steps["fifty"].output) == fifty
        # The artifacts are kept beside the events, and a later step was handed the content.
        assert executor.artifacts.get("beta", two.sha256) == b" " * (MB2 - 1) + b"x"
        copied = Path(run.workspace) / "copy.txt"
        assert copied.stat().st_size == MB2
        # A 50 MB output costs far less than the 500 MB it once did (the test process included).
        assert peak_mb < 450, f"peak RSS {peak_mb:.0f} MB"

        # Another tenant's events are in the same store, after the large ones.
        store.append([make_draft(1, "a1", tenant="alpha"), make_draft(2, "a1", tenant="alpha")])
        relay = JetStreamRelay(store, nats_server.url)
        asyncio.run(relay.catch_up(timeout=120))

        objects = asyncio.run(_bucket_objects(nats_server.url, "beta"))
        assert objects == {two.sha256: MB2, fifty.sha256: MB50}
        held = asyncio.run(_object(nats_server.url, "beta", two.sha256))
        assert hashlib.sha256(held).hexdigest() == two.sha256
        assert len(asyncio.run(stream_messages(nats_server.url, "beta"))) == len(events)
        assert len(asyncio.run(stream_messages(nats_server.url, "alpha"))) == 2
        assert relay.artifacts.uploaded == 2

        # Relaying again (a restart) uploads nothing twice.
        store.track_position("jetstream_relay", 0)
        again = JetStreamRelay(store, nats_server.url)
        asyncio.run(again.catch_up(timeout=60))
        assert again.artifacts.uploaded == 0
    finally:
        store.close()


def test_an_output_over_the_policy_bound_still_fails_its_step_with_the_clear_message(
    tmp_path: Path,
) -> None:
    executor = _executor(EventStoreSettings(name="executor", home=tmp_path))
    mission_yaml = """\
version: "1.0"
name: too large
steps:
  - {id: big, step_type: command, parameters: {command: printf, args: ["%3000000s", x],
     max_output_bytes: 1000000}}
"""
    try:
        mission = executor.start("beta", plan_of(mission_yaml), {})
        run = asyncio.run(executor.drive("beta", mission))
        assert run.outcome == "failed"
        error = run.steps["big"].error or ""
        assert "wrote more than max_output_bytes (1000000) and was stopped" in error
        assert list(executor.artifacts.sha256s("beta")) == []
    finally:
        executor.store.close()


@pytest.mark.parametrize("inline", [1024])
def test_outputs_up_to_the_inline_size_stay_in_the_event(tmp_path: Path, inline: int) -> None:
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    executor = build_executor(
        {**os.environ, "RUSTCHAIN_HOME": str(tmp_path)},
        store,
        registry=default_registry(include_plugins=False),
        workspaces=tmp_path / "ws",
        policy_for=None,
        artifact_inline_bytes=inline,
    )
    mission_yaml = """\
version: "1.0"
name: small
steps:
  - {id: small, step_type: noop, parameters: {message: "hello"}}
"""
    try:
        mission = executor.start("beta", plan_of(mission_yaml), {})
        run = asyncio.run(executor.drive("beta", mission))
        assert run.steps["small"].output is not None
        assert ArtifactRef.of_value(run.steps["small"].output) is None
        assert list(store.artifacts.sha256s("beta")) == []
    finally:
        store.close()


async def _delete_object(url: str, tenant: str, name: str) -> None:
    client = await connect(url)
    try:
        bucket = await client.jetstream().object_store(object_bucket(tenant))
        await bucket.delete(name)
    finally:
        await client.close()


def test_audit_verify_checks_each_artifact_in_the_tenants_jetstream_bucket(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    mission_file = home_with_mission(tmp_path)
    assert rustchain(tmp_path, "run", str(mission_file)).returncode == 0
    for name in ("executor", "verifier"):
        store = open_event_store(EventStoreSettings(name=name, home=tmp_path))
        try:
            asyncio.run(JetStreamRelay(store, nats_server.url).catch_up(timeout=60))
        finally:
            store.close()

    agreed = rustchain(tmp_path, "audit", "verify", "--jetstream", NATS_URL=nats_server.url)
    asyncio.run(_delete_object(nats_server.url, "default", SHA))
    missing = rustchain(tmp_path, "audit", "verify", "--jetstream", NATS_URL=nats_server.url)

    assert agreed.returncode == 0, agreed.stderr
    assert missing.returncode == 1
    assert f"artifact {SHA} (6,000,000 bytes) is missing in JetStream's bucket" in missing.stderr
    assert "(StepSucceeded, id" in missing.stderr


def test_a_bucket_that_refuses_an_artifact_pauses_its_tenant_only_until_it_is_fixed(
    nats_server: NatsServer, sqlite_settings: EventStoreSettings
) -> None:
    store = open_event_store(sqlite_settings)
    url = nats_server.url
    recorded, made = externalize({"stdout": "y" * MB2}, 64 * 1024)
    store.artifacts.put("beta", made)
    store.append([make_draft(1, "b1", tenant="beta", payload={"output": recorded})])
    store.append([make_draft(n, "a1", tenant="alpha") for n in range(1, 21)])
    settings = RelaySettings(ack_timeout=5.0, backoff_max=0.2, tenant_backoff_max=0.2)

    async def refuse_then_fix() -> JetStreamRelay:
        client = await connect(url)
        js = client.jetstream()
        await ensure_bucket(js, "beta", StreamSettings(max_bytes=100_000))
        relay = JetStreamRelay(store, url, settings)
        stop = asyncio.Event()
        running = asyncio.ensure_future(relay.run(stop))
        try:
            await wait_until(
                lambda: (
                    "beta" in relay.stats.paused() and relay.stats.tenants["alpha"].published == 20
                ),
                60,
                "alpha's events are published while beta's artifact is refused",
            )
            reason = relay.stats.paused()["beta"]
            info = await js.stream_info(object_stream("beta"))
            info.config.max_bytes = -1
            await js.update_stream(info.config)
            await wait_until(lambda: relay.position == store.last_position(), 60, "beta resumes")
        finally:
            stop.set()
            await running
            await client.close()
        assert f"bucket ARTIFACTS_BETA refused artifact {made[0].ref.sha256}" in reason
        return relay

    try:
        relay = asyncio.run(refuse_then_fix())
        assert relay.stats.paused() == {}
        assert len(asyncio.run(stream_messages(url, "beta"))) == 1
        assert asyncio.run(_bucket_objects(url, "beta")) == {made[0].ref.sha256: MB2}
    finally:
        store.close()


def test_a_6mb_output_is_watched_and_shown_over_grpc_by_reference(tmp_path: Path) -> None:
    mission_file = home_with_mission(tmp_path)

    async def scenario() -> None:
        async with running_services(tmp_path) as services:
            planner = planner_pb2_grpc.PlannerServiceStub(services.channel("planner"))
            reply = await planner.SubmitMission(
                planner_pb2.SubmitMissionRequest(yaml=mission_file.read_text()),
                metadata=tenant_metadata("default"),
            )
            assert reply.accepted, [d.message for d in reply.diagnostics]
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            watched = [
                event
                async for event in executor.WatchMission(
                    executor_pb2.WatchMissionRequest(mission_id=reply.mission_id),
                    metadata=tenant_metadata("default"),
                )
            ]
            summary = await executor.GetMission(
                executor_pb2.GetMissionRequest(mission_id=reply.mission_id),
                metadata=tenant_metadata("default"),
            )
        # Once, 6 MB made `run` and `status` fail: "Received message larger than max".
        assert max(event.ByteSize() for event in watched) < 16 * 1024
        assert summary.ByteSize() < 16 * 1024
        [finished] = [e for e in watched if e.type == "MissionFinished"]
        assert json.loads(finished.payload_json)["outcome"] == "succeeded"
        ref = ArtifactRef.of_value(json.loads(summary.outputs_json)["big"])
        assert ref is not None and ref.sha256 == SHA

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_reconcile_puts_the_artifacts_of_the_events_it_republishes_in_the_bucket(
    nats_server: NatsServer, sqlite_settings: EventStoreSettings
) -> None:
    store = open_event_store(sqlite_settings)
    recorded, [made] = externalize({"stdout": "z" * MB2}, 64 * 1024)
    store.artifacts.put("beta", [made])
    store.append([make_draft(1, "b1", tenant="beta", payload={"output": recorded})])

    async def republish() -> None:
        client = await connect(nats_server.url)
        try:
            [result] = await reconcile(store, client.jetstream(), StreamSettings())
            assert result.republished == 1
        finally:
            await client.close()

    try:
        asyncio.run(republish())
        assert asyncio.run(_bucket_objects(nats_server.url, "beta")) == {made.ref.sha256: MB2}
        assert len(asyncio.run(stream_messages(nats_server.url, "beta"))) == 1
    finally:
        store.close()


def test_artifacts_are_encrypted_at_rest_with_the_events_cipher(tmp_path: Path) -> None:
    settings = EventStoreSettings(name="executor", home=tmp_path, cipher_key=new_cipher_key())
    store = open_event_store(settings)
    _, [made] = externalize("secret-looking text " * 10_000, 64 * 1024)
    try:
        store.artifacts.put("beta", [made, made])
        assert store.artifacts.get("beta", made.ref.sha256) == made.data
        assert store.artifacts.get("alpha", made.ref.sha256) is None
        assert list(store.artifacts.sha256s("beta")) == [made.ref.sha256]
    finally:
        store.close()
    raw = sqlite3.connect(tmp_path / "executor-events.sqlite")
    try:
        [(data,)] = raw.execute("SELECT data FROM executor_artifacts").fetchall()
    finally:
        raw.close()
    assert b"secret-looking" not in data
