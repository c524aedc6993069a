"""The artifacts of a service's events, in a table of the same database as the events.

Keyed by (tenant, sha256): content-addressed, so writing the same bytes twice keeps one row, and
an artifact is written before the event that references it commits (a crash between the two
leaves an unreferenced row, never a reference without its bytes). Encrypted at rest with the
events' cipher when one is configured; the SHA-256 names the plaintext.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from eventsourcing.persistence import Cipher

from rustchain.domain.events.names import validate_tenant
from rustchain.domain.plans.artifacts import Artifact, ArtifactRef, check_sha256, internalize

ARTIFACTS_TABLE_SUFFIX = "_artifacts"


class Datastore(Protocol):
    """The `eventsourcing` datastore of a recorder: SQLite's or PostgreSQL's."""

    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        """A cursor in a transaction, committed at the end when `commit`."""


class ArtifactStore(Protocol):
    """Where a service keeps the artifacts its events reference, per tenant, by SHA-256."""

    def put(self, tenant: str, artifacts: list[Artifact]) -> None:
        """Keep the artifacts (already kept ones are left as they are)."""

    def get(self, tenant: str, sha256: str) -> bytes | None:
        """An artifact's bytes as kept (None when missing); the caller verifies them."""

    def sha256s(self, tenant: str) -> Iterator[str]:
        """The names of every artifact kept for a tenant."""


class SqlArtifactStore:
    """An ArtifactStore in the `<store>_artifacts` table of the events' SQLite or PostgreSQL."""

    def __init__(
        self, datastore: Datastore, store_name: str, postgres: bool, cipher: Cipher | None
    ) -> None:
        self._datastore = datastore
        self._table = store_name + ARTIFACTS_TABLE_SUFFIX
        # SQLite's and psycopg's parameter styles; the table name is a checked store name.
        self._mark = "%s" if postgres else "?"
        self._blob = "BYTEA" if postgres else "BLOB"
        self._cipher = cipher
        self._create()

    def _create(self) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} ("
                " tenant TEXT NOT NULL, sha256 TEXT NOT NULL, media_type TEXT NOT NULL,"
                f" size BIGINT NOT NULL, data {self._blob} NOT NULL,"
                " PRIMARY KEY (tenant, sha256))"
            )

    def put(self, tenant: str, artifacts: list[Artifact]) -> None:
        """Keep the artifacts (already kept ones are left as they are)."""
        validate_tenant(tenant)
        m = self._mark
        for item in artifacts:
            data = item.data if self._cipher is None else self._cipher.encrypt(item.data)
            with self._datastore.transaction(commit=True) as cursor:
                cursor.execute(
                    f"INSERT INTO {self._table} (tenant, sha256, media_type, size, data)"
                    f" VALUES ({m}, {m}, {m}, {m}, {m}) ON CONFLICT (tenant, sha256) DO NOTHING",
                    (tenant, item.ref.sha256, item.ref.media_type, item.ref.size, data),
                )

    def get(self, tenant: str, sha256: str) -> bytes | None:
        """An artifact's bytes as kept (None when missing); the caller verifies them."""
        check_sha256(sha256)
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT data FROM {self._table} WHERE tenant = {self._mark}"
                f" AND sha256 = {self._mark}",
                (tenant, sha256),
            )
            row = cursor.fetchone()
        if row is None:
            return None
        data = bytes(row["data"])
        return data if self._cipher is None else self._cipher.decrypt(data)

    def sha256s(self, tenant: str) -> Iterator[str]:
        """The names of every artifact kept for a tenant."""
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT sha256 FROM {self._table} WHERE tenant = {self._mark} ORDER BY sha256",
                (tenant,),
            )
            rows = cursor.fetchall()
        return iter([str(row["sha256"]) for row in rows])


class HeldArtifactStore:
    """Artifacts held in this process only, beside the in-memory event store (replays, tests)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], bytes] = {}

    def put(self, tenant: str, artifacts: list[Artifact]) -> None:
        """Keep the artifacts (already kept ones are left as they are)."""
        validate_tenant(tenant)
        for item in artifacts:
            self._held.setdefault((tenant, item.ref.sha256), item.data)

    def get(self, tenant: str, sha256: str) -> bytes | None:
        """An artifact's bytes as kept (None when missing); the caller verifies them."""
        check_sha256(sha256)
        return self._held.get((tenant, sha256))

    def sha256s(self, tenant: str) -> Iterator[str]:
        """The names of every artifact kept for a tenant."""
        return iter(sorted(sha for held_tenant, sha in self._held if held_tenant == tenant))


def resolve(store: ArtifactStore, tenant: str, value: Any) -> Any:
    """A recorded value with every artifact it references read back and verified."""

    def read(ref: ArtifactRef) -> bytes | None:
        return store.get(tenant, ref.sha256)

    return internalize(value, read)
