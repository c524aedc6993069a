"""Connections to a granted PostgreSQL database: the credentials come from the step's connection
text (a `{secrets.NAME}` reference), the place from the tenant's grant, and the connection goes
to the one address that was checked (libpq's `hostaddr`: no second lookup)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rustchain.domain.policy.data import DatabaseGrant
from rustchain.steps.support.data_services import granted_address
from rustchain.steps.support.errors import PolicyRefusedError
from rustchain.steps.support.runtime import StepContext, StepRunError

if TYPE_CHECKING:
    import psycopg

# Options a connection text may set: who connects and how securely; nothing that names another
# server, a service file, a password file or a client key on the executor's machine.
_ACCEPTED = {"user", "password", "sslmode", "application_name", "host", "port", "dbname"}


def connection_options(grant: DatabaseGrant, connection: str | None) -> dict[str, Any]:
    """The libpq options of a connection text, which may only name the granted place."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        options: dict[str, Any] = conninfo_to_dict(connection or "")
    except psycopg.ProgrammingError as error:
        raise StepRunError(f"connection is not a PostgreSQL connection text: {error}") from None
    extra = sorted(set(options) - _ACCEPTED)
    if extra:
        raise PolicyRefusedError(
            f"[databases.connection] connection sets {', '.join(extra)}; it may only give "
            "user, password, sslmode and application_name for the granted database"
        )
    expected = {"host": grant.host, "port": str(grant.port), "dbname": grant.database}
    for key, value in expected.items():
        given = options.get(key)
        if given is not None and str(given) != value:
            raise PolicyRefusedError(
                f"[databases.connection] connection names {key} '{given}', but database "
                f"'{grant.name}' is granted at {key} '{value}'; the tenant's policy refuses it"
            )
    return {k: v for k, v in options.items() if k not in expected}


async def connect(
    context: StepContext, grant: DatabaseGrant, connection: str | None
) -> psycopg.AsyncConnection[Any]:
    """An open connection to the granted database, with a statement timeout of the step's."""
    import psycopg

    assert grant.host is not None and grant.database is not None  # checked by the grant model
    options = connection_options(grant, connection)
    address = await granted_address(context, grant.host, grant.port)
    timeout_ms = max(1, int(context.timeout_seconds * 1000))
    try:
        return await psycopg.AsyncConnection.connect(
            host=grant.host,
            hostaddr=address,
            port=grant.port,
            dbname=grant.database,
            # A password comes only from the connection text, never from a file of the executor.
            passfile="/nonexistent/rustchain-passfile",
            connect_timeout=max(2, int(context.timeout_seconds)),
            options=f"-c statement_timeout={timeout_ms}",
            **options,
        )
    except psycopg.Error as error:
        raise StepRunError(f"database '{grant.name}' cannot be reached: {error}") from None
