"""Several executor replicas on one PostgreSQL store: leases decide who drives, fences refuse
the writes of a replica that lost its lease, and no non-idempotent step runs twice.

Each replica is a real ExecutorApplication and MissionDriver with its own store connections, in
one process; their steps append a line to one ledger file (the side effect that must not repeat).
Leases last 2 s here (a loaded CI machine must still renew them), so a takeover takes about 2 s.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from pydantic import BaseModel

from rustchain.bootstrap.executor import build_executor, mission_leases
from rustchain.domain.access.quotas import QuotaExceededError, TenantQuotas
from rustchain.domain.language.step_types import StepTypeRegistry
from rustchain.domain.plans.plan import Plan
from rustchain.domain.runs.mission_run import StepStatus
from rustchain.domain.runs.run_decisions import NOT_IDEMPOTENT_INTERRUPTED
from rustchain.executor.admission import StartMission
from rustchain.executor.application import ExecutorApplication, MissionNotFoundError
from rustchain.executor.driver import MissionDriver
from rustchain.executor.servicer import ExecutorServicer, binding
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.platform.grpc.server import start_server
from rustchain.platform.storage.event_store import (
    IDLE_IN_TRANSACTION_SECONDS,
    EventStoreSettings,
    RecorderEventStore,
    open_event_store,
)
from rustchain.platform.storage.fenced_recorder import FencedPostgresProcessRecorder
from rustchain.platform.storage.lease_fence import FencedWrite, Lease, LeaseLostError, check_write
from rustchain.platform.storage.mission_leases import (
    LocalMissionLeases,
    MissionLeases,
    PostgresMissionLeases,
    ReplicaSettings,
)
from rustchain.steps.support.runtime import StepContext
from tests.conditions import wait_until
from tests.integration.conftest import _drop_tables, postgres_url
from tests.replay import AnyParameters
from tests.unit.compile_helpers import REGISTRY, plan_of

pytestmark = pytest.mark.postgres
TENANT = "acme"
LEASE_SECONDS = "2"
WAIT_SECONDS = 30.0
STUCK = "rustchain test cut-off"


def _plan(steps: int, idempotent: bool = False) -> Plan:
    lines = ['version: "1.0"', "name: ledger", "steps:"]
    for n in range(steps):
        after = f", depends_on: [s{n - 1}]" if n else ""
        retry = f", retry: {{idempotent: {str(idempotent).lower()}}}"
        lines.append(f"  - {{id: s{n}, name: S{n}, step_type: noop{after}{retry}}}")
    return plan_of("\n".join(lines) + "\n")


@dataclass
class Ledger:
    """The side effect of every step: one line per run of a step, in a file."""

    path: Path
    # Steps that wait for the test before they finish: (replica, mission id, step id) -> gate.
    gates: dict[tuple[str, str, str], asyncio.Event] = field(default_factory=dict)
    entered: dict[tuple[str, str, str], asyncio.Event] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Every line written, in order."""
        return self.path.read_text().splitlines() if self.path.exists() else []

    def runs_of(self, mission_id: str, step_id: str) -> list[str]:
        """The replicas that ran a step, once per run."""
        return [
            line.split()[0] for line in self.lines() if line.split()[1:] == [mission_id, step_id]
        ]

    def hold(self, replica: str, mission_id: str, step_id: str) -> asyncio.Event:
        """Make a step run by `replica` wait once it has written its line; returns the gate
        that lets it end."""
        self.entered[(replica, mission_id, step_id)] = asyncio.Event()
        return self.gates.setdefault((replica, mission_id, step_id), asyncio.Event())


@dataclass(frozen=True)
class LedgerStep:
    """A step type whose runner writes its line to the ledger (never idempotent in effect)."""

    name: str
    summary: str
    ledger: Ledger
    replica: str
    parameters: type[BaseModel] = AnyParameters

    async def run(self, params: BaseModel, context: StepContext) -> Any:
        """Write `replica mission step` to the ledger, then wait at the step's gate if any."""
        key = (self.replica, context.mission_id, context.step_id)
        with self.ledger.path.open("a") as ledger:
            ledger.write(f"{self.replica} {context.mission_id} {context.step_id}\n")
        if key in self.ledger.gates:
            self.ledger.entered[key].set()
            await self.ledger.gates[key].wait()
        return "done"


class PausedLeases:
    """A replica's leases whose heartbeat does not reach the database while it is paused (as a
    SIGSTOPped or partitioned process): its appends still reach the store's fence."""

    def __init__(self, leases: MissionLeases) -> None:
        self._leases = leases
        self.paused = False
        self.renewals_fail = False  # only its renewals fail (a statement the database refuses)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._leases, name)

    def renew(self, leases: Iterable[Lease]) -> set[Lease]:
        """Nothing while paused (the heartbeat is lost), else the real renewal."""
        if self.paused:
            raise ConnectionError("the replica is paused")
        if self.renewals_fail:
            raise ConnectionError("the renewal failed")
        return self._leases.renew(leases)

    def claim(self, limit: int) -> list[Lease]:
        """Nothing while paused."""
        if self.paused:
            raise ConnectionError("the replica is paused")
        return self._leases.claim(limit)


@dataclass
class Replica:
    """One executor replica: its store connections, application and driver."""

    name: str
    store: RecorderEventStore
    application: ExecutorApplication
    driver: MissionDriver
    leases: PausedLeases


class Cluster:
    """Replicas on one PostgreSQL store, and the ledger their steps write."""

    def __init__(self, settings: EventStoreSettings, home: Path) -> None:
        self.settings = settings
        self.home = home
        self.ledger = Ledger(home / "ledger.txt")
        self.replicas: list[Replica] = []

    def add(
        self,
        name: str,
        capacity: int = 100,
        quotas: TenantQuotas | None = None,
        lease_seconds: str = LEASE_SECONDS,
    ) -> Replica:
        """A replica named `name` with its own connections to the store."""
        store = open_event_store(self.settings)
        environ = {
            "RUSTCHAIN_HOME": str(self.home),
            "RUSTCHAIN_EXECUTOR_ID": name,
            "RUSTCHAIN_LEASE_SECONDS": lease_seconds,
            "RUSTCHAIN_EXECUTOR_CAPACITY": str(capacity),
        }
        registry = StepTypeRegistry.of(
            [LedgerStep(n, "ledger", self.ledger, name) for n in REGISTRY.names], {}
        )
        leases = PausedLeases(mission_leases(environ, store))
        application = build_executor(
            environ, store, registry=registry, policy_for=None, quotas=quotas, leases=leases
        )
        replica = Replica(name, store, application, MissionDriver(application), leases)
        self.replicas.append(replica)
        return replica

    async def close(self) -> None:
        """Stop every replica's drives and close its connections."""
        for replica in self.replicas:
            await replica.driver.stop()
            replica.store.close()

    def lease_rows(self) -> list[dict[str, Any]]:
        """The lease table as stored."""
        url = self.settings.database_url or ""
        with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as connection:
            table = f"{self.settings.name}_leases"
            rows = connection.execute(
                f"SELECT tenant, mission_id, owner, epoch, finished FROM {table}"
            ).fetchall()
        return list(rows)


@pytest.fixture
def pg_settings(tmp_path: Path) -> Iterator[EventStoreSettings]:
    url = postgres_url()
    name = f"t{uuid.uuid4().hex[:12]}"
    yield EventStoreSettings(name=name, home=tmp_path, database_url=url)
    _drop_tables(url, name)


@pytest.fixture
def cluster(pg_settings: EventStoreSettings, tmp_path: Path) -> Cluster:
    return Cluster(pg_settings, tmp_path)


def _run(cluster: Cluster, scenario: Callable[[], Awaitable[None]]) -> None:
    """Run a scenario on a fresh event loop, then stop the replicas it made."""

    async def run() -> None:
        try:
            await scenario()
        finally:
            await cluster.close()

    asyncio.run(run())


def _outcome(replica: Replica, mission_id: str) -> str:
    return replica.application.load(TENANT, mission_id).outcome or "running"


def test_missions_spread_over_replicas_and_no_step_runs_twice(cluster: Cluster) -> None:
    async def scenario() -> None:
        first, *others = [cluster.add(f"r{n}", capacity=3) for n in range(3)]
        for replica in others:
            replica.driver.resume_unfinished()  # starts the claim loop, as a served executor does
        plan = _plan(3)
        missions = [
            await first.driver.start(StartMission(TENANT, plan, mission_id=f"m{n}"))
            for n in range(9)
        ]
        await wait_until(
            lambda: all(_outcome(first, m) == "succeeded" for m in missions),
            WAIT_SECONDS,
            "every mission succeeded",
        )
        ran = [(m, f"s{n}") for m in missions for n in range(3)]
        assert all(len(cluster.ledger.runs_of(m, s)) == 1 for m, s in ran), cluster.ledger.lines()
        drivers = {line.split()[0] for line in cluster.ledger.lines()}
        assert len(drivers) >= 2, "the first replica had room for 3 missions; others took the rest"
        assert all(row["finished"] and row["owner"] is None for row in cluster.lease_rows())

    _run(cluster, scenario)


def test_a_start_without_room_wakes_a_peer_at_once(cluster: Cluster) -> None:
    async def scenario() -> None:
        # Leases of 60 s: the peer's heartbeat beats every 20 s, so only the NOTIFY of the free
        # lease can make it claim the second mission within the few seconds waited here.
        full = cluster.add("full", capacity=1, lease_seconds="60")
        peer = cluster.add("peer", lease_seconds="60")
        peer.driver.resume_unfinished()
        await wait_until(lambda: peer.driver.beats == 1, WAIT_SECONDS, "the peer's first beat")
        gate = cluster.ledger.hold("full", "m1", "s0")
        await full.driver.start(StartMission(TENANT, _plan(1), mission_id="m1"))
        await full.driver.start(StartMission(TENANT, _plan(1), mission_id="m2"))
        run = await asyncio.wait_for(peer.driver.finished(TENANT, "m2"), 10.0)
        assert run.outcome == "succeeded"
        assert cluster.ledger.runs_of("m2", "s0") == ["peer"]
        gate.set()

    _run(cluster, scenario)


def test_a_zombie_whose_lease_was_taken_writes_nothing(cluster: Cluster) -> None:
    async def scenario() -> None:
        zombie, successor = cluster.add("zombie"), cluster.add("successor")
        mission_id = zombie.application.start(TENANT, _plan(1), {}, "m1", take=True)
        lease = zombie.application.leases.started(TENANT, mission_id)
        assert lease == Lease(TENANT, mission_id, "zombie", 1)
        # The zombie never renews: once its lease expires, the successor claims it.
        taken: list[Lease] = []
        await wait_until(
            lambda: bool(taken.extend(successor.leases.claim(1)) or taken),
            WAIT_SECONDS,
            "the successor claimed the expired lease",
        )
        assert taken == [Lease(TENANT, mission_id, "successor", 2)]
        before = len(zombie.application.history(TENANT, mission_id))
        with pytest.raises(LeaseLostError, match="no longer held by 'zombie' at epoch 1"):
            await zombie.application.drive(TENANT, mission_id, lease)
        assert len(zombie.application.history(TENANT, mission_id)) == before
        assert cluster.ledger.lines() == [], "the zombie's StepStarted was refused: no effect"
        view = successor.application.leases.owner_of(TENANT, mission_id)
        assert view is not None and (view.owner, view.epoch) == ("successor", 2)

    _run(cluster, scenario)


def test_a_replica_whose_renewals_fail_still_claims_a_dead_peers_missions(
    cluster: Cluster,
) -> None:
    async def scenario() -> None:
        dead, survivor = cluster.add("dead"), cluster.add("survivor")
        dead.application.start(TENANT, _plan(1), {}, "m1", take=True)  # and never drives it
        survivor.leases.renewals_fail = True
        survivor.driver.resume_unfinished()  # its heartbeat: each renewal fails, claims go on
        await wait_until(
            lambda: _outcome(survivor, "m1") == "succeeded", WAIT_SECONDS, "the survivor ran m1"
        )
        assert cluster.ledger.runs_of("m1", "s0") == ["survivor"]

    _run(cluster, scenario)


def test_a_replica_frozen_inside_an_append_does_not_hold_the_takeover_up(cluster: Cluster) -> None:
    async def scenario() -> None:
        frozen, successor = cluster.add("frozen"), cluster.add("successor")
        frozen.application.start(TENANT, _plan(1), {}, "m1", take=True)
        lease = frozen.application.leases.started(TENANT, "m1")
        recorder = frozen.store.recorder
        assert isinstance(recorder, FencedPostgresProcessRecorder) and lease is not None
        with recorder.datastore.get_connection() as connection:
            # An append's transaction that checked the lease (a lock on its row) and then froze.
            connection.execute("BEGIN")
            fence = FencedWrite(lease)
            check_write(connection.cursor(), recorder.leases_table, fence, recorder.leases_channel)
            taken: list[Lease] = []
            await wait_until(
                lambda: bool(taken.extend(successor.leases.claim(1)) or taken),
                IDLE_IN_TRANSACTION_SECONDS + WAIT_SECONDS,
                "the successor claimed the lease the frozen append held locked",
            )
            assert taken == [Lease(TENANT, "m1", "successor", 2)]
            # Ended by PostgreSQL's idle limit, or by the claim that found it stuck on the row.
            ended = (psycopg.errors.IdleInTransactionSessionTimeout, psycopg.errors.AdminShutdown)
            with pytest.raises(ended):
                connection.execute("COMMIT")

    _run(cluster, scenario)


def _sessions_named(url: str, application: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_session_cut_off_mid_append_is_ended_so_takeovers_and_appends_go_on(
    cluster: Cluster,
) -> None:
    async def scenario() -> None:
        cut_off, successor = cluster.add("cut-off"), cluster.add("successor")
        cut_off.application.start(TENANT, _plan(1), {}, "m1", take=True)
        url = cluster.settings.database_url or ""
        store = cluster.settings.name
        stuck = f"rustchain {store} cut-off"  # as the store names its executors' sessions
        connection = psycopg.connect(url, autocommit=True, application_name=stuck)
        try:
            # An append's lease check and its lock of the events table ran; the message ending
            # them never arrived (a partition, a frozen writer). The session stays "active",
            # holding both locks, past any idle limit.
            pgconn = connection.pgconn
            pgconn.enter_pipeline_mode()
            pgconn.send_query_params(b"BEGIN", None)
            check = f"SELECT 1 FROM {store}_leases WHERE tenant = $1 AND mission_id = $2 FOR SHARE"
            pgconn.send_query_params(check.encode(), [TENANT.encode(), b"m1"])
            pgconn.send_query_params(f"LOCK TABLE {store}_events IN EXCLUSIVE MODE".encode(), None)
            pgconn.flush()
            # The successor's listening thread looks for stuck sessions at each heartbeat period.
            stop_listening = successor.leases.listen(lambda: None, lambda tenant, mission: None)
            taken: list[Lease] = []
            try:
                await wait_until(
                    lambda: bool(taken.extend(successor.leases.claim(1)) or taken),
                    WAIT_SECONDS,
                    "the successor claimed the lease the cut-off session held locked",
                )
            finally:
                stop_listening()
            assert taken == [Lease(TENANT, "m1", "successor", 2)]
            await wait_until(
                lambda: _sessions_named(url, stuck) == 0, WAIT_SECONDS, "the stuck session ended"
            )
            # The events table is free again: appends go on.
            assert successor.application.start(TENANT, _plan(1), {}, "m2", take=True) == "m2"
        finally:
            connection.pgconn.finish()

    _run(cluster, scenario)


def test_a_replica_restarted_under_the_same_name_fences_its_predecessor(cluster: Cluster) -> None:
    async def scenario() -> None:
        before, after = cluster.add("executor-0"), cluster.add("executor-0")
        before.application.start(TENANT, _plan(1), {}, "m1", take=True)
        old = before.application.leases.started(TENANT, "m1")
        new = after.driver.claim(TENANT, "m1")
        assert old is not None and new == Lease(TENANT, "m1", "executor-0", 2)
        with pytest.raises(LeaseLostError, match="at epoch 1"):
            await before.application.drive(TENANT, "m1", old)
        assert cluster.ledger.lines() == []

    _run(cluster, scenario)


def test_takeover_applies_the_interrupted_step_rule_and_refuses_the_late_writes(
    cluster: Cluster,
) -> None:
    async def scenario() -> None:
        paused, successor = cluster.add("paused"), cluster.add("successor")
        once, again = _plan(2, idempotent=False), _plan(2, idempotent=True)
        gates = [cluster.ledger.hold("paused", m, "s0") for m in ("once", "again")]
        await paused.driver.start(StartMission(TENANT, once, mission_id="once"))
        await paused.driver.start(StartMission(TENANT, again, mission_id="again"))
        await asyncio.gather(
            *(cluster.ledger.entered[("paused", m, "s0")].wait() for m in ("once", "again"))
        )
        paused.leases.paused = True  # its heartbeat stops; its drives wait in their steps
        successor.driver.resume_unfinished()
        await wait_until(
            lambda: (
                _outcome(successor, "once") != "running"
                and _outcome(successor, "again") != "running"
            ),
            WAIT_SECONDS,
            "the successor finished both missions",
        )
        failed = successor.application.load(TENANT, "once")
        assert failed.outcome == "failed"
        assert failed.steps["s0"].error == NOT_IDEMPOTENT_INTERRUPTED
        assert successor.application.load(TENANT, "again").outcome == "succeeded"
        # The paused replica's steps end now (SIGCONT): the fence refuses what they would record.
        version = {m: len(successor.application.history(TENANT, m)) for m in ("once", "again")}
        for gate in gates:
            gate.set()
        await wait_until(
            lambda: paused.driver.leases_lost == 2, WAIT_SECONDS, "both drives stopped"
        )
        assert {m: len(successor.application.history(TENANT, m)) for m in version} == version
        assert cluster.ledger.runs_of("once", "s0") == ["paused"]
        assert cluster.ledger.runs_of("once", "s1") == []
        assert cluster.ledger.runs_of("again", "s0") == ["paused", "successor"]
        assert not paused.driver.owns(TENANT, "once") and not paused.driver.owns(TENANT, "again")

    _run(cluster, scenario)


def test_a_heartbeat_that_finds_its_lease_taken_stops_the_drive_and_its_attempt(
    cluster: Cluster,
) -> None:
    async def scenario() -> None:
        late, successor = cluster.add("late"), cluster.add("successor")
        cluster.ledger.hold("late", "m1", "s0")  # never let go: only the heartbeat stops it
        await late.driver.start(StartMission(TENANT, _plan(2), mission_id="m1"))
        await cluster.ledger.entered[("late", "m1", "s0")].wait()
        late.leases.paused = True  # its renewals stop reaching the database...
        successor.driver.resume_unfinished()
        await wait_until(
            lambda: _outcome(successor, "m1") == "failed", WAIT_SECONDS, "the successor ended m1"
        )
        version = len(successor.application.history(TENANT, "m1"))
        late.leases.paused = False  # ...until they do again, too late
        await wait_until(lambda: late.driver.leases_lost == 1, WAIT_SECONDS, "the drive stopped")
        assert not late.driver.owns(TENANT, "m1")
        assert len(successor.application.history(TENANT, "m1")) == version
        assert cluster.ledger.runs_of("m1", "s0") == ["late"]
        assert cluster.ledger.runs_of("m1", "s1") == []

    _run(cluster, scenario)


def test_a_cancel_from_another_replica_stops_the_mission_its_owner_drives(
    cluster: Cluster,
) -> None:
    async def scenario() -> None:
        owner, other = cluster.add("owner"), cluster.add("other")
        gate = cluster.ledger.hold("owner", "m1", "s0")
        await owner.driver.start(StartMission(TENANT, _plan(2), mission_id="m1"))
        await cluster.ledger.entered[("owner", "m1", "s0")].wait()
        assert other.driver.cancel(TENANT, "m1", "not needed") is True
        # The owner hears of it at once (NOTIFY), not at its next append: it skips the step not
        # yet started while s0 still runs, as it does with a cancel sent to it.
        await wait_until(
            lambda: other.application.load(TENANT, "m1").steps["s1"].status == StepStatus.SKIPPED,
            WAIT_SECONDS,
            "the owner skipped s1",
        )
        assert owner.driver.owns(TENANT, "m1")
        ended = asyncio.ensure_future(other.driver.finished(TENANT, "m1"))
        gate.set()
        run = await asyncio.wait_for(ended, WAIT_SECONDS)
        assert run.outcome == "cancelled" and run.cancel_reason == "not needed"
        assert cluster.ledger.runs_of("m1", "s1") == []
        assert owner.driver.leases_lost == 0

    _run(cluster, scenario)


def test_a_mission_recorded_before_leases_is_adopted_and_driven(cluster: Cluster) -> None:
    async def scenario() -> None:
        replica = cluster.add("r1")
        # Started as the executor did before leases existed: no lease row.
        before = build_executor(
            {"RUSTCHAIN_HOME": str(cluster.home)},
            replica.store,
            registry=replica.application.registry,
            policy_for=None,
            leases=LocalMissionLeases(ReplicaSettings("old")),
        )
        before.start(TENANT, _plan(2), {}, "old")
        assert cluster.lease_rows() == []
        assert replica.driver.resume_unfinished() == [(TENANT, "old")]
        run = await asyncio.wait_for(replica.driver.finished(TENANT, "old"), WAIT_SECONDS)
        assert run.outcome == "succeeded"
        assert [(r["mission_id"], r["finished"]) for r in cluster.lease_rows()] == [("old", True)]

    _run(cluster, scenario)


def test_a_lease_without_a_history_is_closed_rather_than_claimed_again(
    cluster: Cluster,
) -> None:
    async def scenario() -> None:
        replica = cluster.add("r1")
        replica.application.leases.adopt([(TENANT, "ghost")])
        replica.driver.resume_unfinished()
        await wait_until(
            lambda: cluster.lease_rows()[0]["finished"], WAIT_SECONDS, "the lease was closed"
        )
        assert not replica.driver.owns(TENANT, "ghost")

    _run(cluster, scenario)


def test_the_tenants_quota_holds_across_replicas(cluster: Cluster) -> None:
    async def scenario() -> None:
        quotas = TenantQuotas(max_concurrent_missions=2)
        replicas = [cluster.add(f"r{n}", quotas=quotas) for n in range(3)]
        plan = _plan(1)

        def start(n: int) -> str:
            replica = replicas[n % 3]
            try:
                return replica.application.start(TENANT, plan, {}, f"m{n}")
            except QuotaExceededError:
                return "refused"

        # Six starts at once on three replicas, each of which runs nothing yet: two may start.
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(start, range(6)))
        started = [answer for answer in answers if answer != "refused"]
        assert len(started) == 2, answers
        refused = next(f"m{n}" for n, answer in enumerate(answers) if answer == "refused")
        with pytest.raises(MissionNotFoundError):
            replicas[0].application.history(TENANT, refused)
        assert sorted(row["mission_id"] for row in cluster.lease_rows()) == sorted(started)
        # Another tenant's room is its own.
        assert replicas[1].application.start("other", plan, {}, "x1") == "x1"

    _run(cluster, scenario)


def test_the_lease_table_is_named_after_the_store(pg_settings: EventStoreSettings) -> None:
    store = open_event_store(pg_settings)
    try:
        leases = build_executor(
            {"RUSTCHAIN_HOME": str(pg_settings.home)}, store, policy_for=None
        ).leases
        assert isinstance(leases, PostgresMissionLeases)
        assert leases.owner_of(TENANT, "nothing") is None
    finally:
        store.close()
    url = pg_settings.database_url or ""
    with psycopg.connect(url) as connection:
        found = connection.execute("SELECT to_regclass(%s)", (f"{pg_settings.name}_leases",))
        assert found.fetchone() == (f"{pg_settings.name}_leases",)


def test_each_store_session_names_its_process_in_pg_stat_activity(tmp_path: Path) -> None:
    name, replica = f"t{uuid.uuid4().hex[:12]}", f"executor-{uuid.uuid4().hex[:8]}"
    environ = {
        "RUSTCHAIN_HOME": str(tmp_path),
        "RUSTCHAIN_DATABASE_URL": postgres_url(),
        "RUSTCHAIN_EXECUTOR_ID": replica,
    }
    settings = EventStoreSettings.from_environ(name, environ)
    assert settings.session_name == f"rustchain {name} {replica}"
    store = open_event_store(settings)
    try:
        store.last_position()
        with psycopg.connect(postgres_url()) as connection:
            sessions = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (settings.session_name,),
            ).fetchone()
        assert sessions is not None and sessions[0] >= 1
    finally:
        store.close()
        _drop_tables(postgres_url(), name)


def test_a_watch_on_another_replica_streams_the_mission_to_its_end(cluster: Cluster) -> None:
    async def scenario() -> None:
        owner, watcher = cluster.add("owner"), cluster.add("watcher")
        server = await start_server([binding(ExecutorServicer(watcher.driver))])
        gate = cluster.ledger.hold("owner", "m1", "s0")
        try:
            await owner.driver.start(StartMission(TENANT, _plan(2), mission_id="m1"))
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = executor_pb2_grpc.ExecutorServiceStub(channel)
                request = executor_pb2.WatchMissionRequest(mission_id="m1")
                stream = stub.WatchMission(request, metadata=(("x-rustchain-tenant", TENANT),))
                seen: list[str] = []

                async def watch() -> None:
                    async for event in stream:
                        seen.append(event.type)
                        if event.type == "StepStarted" and event.step_id == "s0":
                            gate.set()  # the owner goes on only once the watch saw it begin

                await asyncio.wait_for(watch(), WAIT_SECONDS)
        finally:
            await server.stop(0)
        assert seen[0] == "MissionStarted" and seen[-1] == "MissionFinished"
        assert seen.count("StepSucceeded") == 2
        assert not watcher.driver.owns(TENANT, "m1")

    _run(cluster, scenario)
