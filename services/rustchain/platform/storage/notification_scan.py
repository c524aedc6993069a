"""Reading a store's notification log as (position, state) pairs, two columns at a time.

The `eventsourcing` recorders build a full `Notification` object per row (originator id converted
to a UUID, topic, version) that readers of the log never use; for an auditor proving a million
events that is most of the time. This asks the same table for the two columns the log needs, in
the same order and with the same bounds, and falls back to the recorder for any other kind.
"""

from __future__ import annotations

from eventsourcing.persistence import ProcessRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier


def scan_states(recorder: ProcessRecorder, after: int, limit: int) -> list[tuple[int, bytes]]:
    """Up to `limit` (position, stored state) pairs after `after`, in log order."""
    if isinstance(recorder, SQLiteApplicationRecorder):
        statement = (
            f"SELECT rowid, state FROM {recorder.events_table_name}"
            " WHERE rowid>? ORDER BY rowid LIMIT ?"
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            # Plain tuples, not the connection's sqlite3.Row objects: nothing to copy per row.
            plain = cursor.sqlite_cursor
            plain.row_factory = None
            plain.execute(statement, (after, limit))
            pairs: list[tuple[int, bytes]] = plain.fetchall()
            return pairs
    if isinstance(recorder, PostgresApplicationRecorder):
        query = SQL(
            "SELECT notification_id, state FROM {schema}.{table}"
            " WHERE notification_id>%s ORDER BY notification_id LIMIT %s"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(query, (after, limit), prepare=True)
            return [(row["notification_id"], bytes(row["state"])) for row in cursor.fetchall()]
    rows = recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
    return [(row.id, row.state) for row in rows]
