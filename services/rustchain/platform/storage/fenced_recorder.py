"""The PostgreSQL process recorder whose inserts check a mission's lease in their transaction.

`eventsourcing`'s PostgreSQL recorder runs `_insert_events(cursor, events, **kwargs)` inside the
transaction that locks the events table and inserts the events; the keyword arguments given to
`insert_events` reach it. This recorder reads a `lease` argument there (`lease_fence`), so the
lease check and the insert commit or fail together. It also makes the store's lease table,
`<store>_leases`, with the events table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import Identifier

from rustchain.platform.storage.lease_fence import (
    LEASES_TABLE_SUFFIX,
    LeaseWrite,
    check_write,
    create_leases_table,
)

_EVENTS_SUFFIX = "_events"
CHANGES_CHANNEL_SUFFIX = "_changes"


class FencedPostgresProcessRecorder(PostgresProcessRecorder):
    """A PostgresProcessRecorder that checks the `lease` an insert carries in its transaction."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        super().__init__(
            datastore,
            events_table_name=events_table_name,
            tracking_table_name=tracking_table_name,
        )
        self.leases_table_name = events_table_name.removesuffix(_EVENTS_SUFFIX) + (
            LEASES_TABLE_SUFFIX
        )
        self.check_identifier_length(self.leases_table_name)
        self.leases_table = Identifier(datastore.schema, self.leases_table_name)
        # Peers LISTEN here for leases left free (a start without room, a replica stopping).
        self.leases_channel = Identifier(self.leases_table_name)
        # The owner of a mission LISTENs here for writes made elsewhere (a cancel).
        self.changes_channel_name = (
            events_table_name.removesuffix(_EVENTS_SUFFIX) + CHANGES_CHANNEL_SUFFIX
        )
        self.changes_channel = Identifier(self.changes_channel_name)
        index = Identifier(self.leases_table_name + "_claimable")
        self.sql_create_statements.extend(create_leases_table(self.leases_table, index))

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert the events; with `lease=`, only while the lease allows it (same transaction)."""
        if kwargs.get("lease") is not None and self.datastore.enable_db_functions:
            # The database-function path inserts without calling `_insert_events`: no fence.
            raise ProgrammingError("a fenced insert needs POSTGRES_ENABLE_DB_FUNCTIONS off")
        ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        return ids

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        lease: LeaseWrite | None = kwargs.get("lease")
        if lease is not None:
            check_write(curs, self.leases_table, lease, self.leases_channel)
        super()._insert_events(curs, stored_events, **kwargs)
