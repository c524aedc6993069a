"""PostgreSQL backups for `db_backup`: refused, with the reason.

A dump is `pg_dump`'s job, and a program runs only inside the sandbox, whose one way out is the
egress proxy for HTTP(S) to allowed hosts: pg_dump there cannot reach the server. Bridging a
socket into the workspace would let any program of the mission reach the database too, past the
`commands.network_hosts` rule, so the step refuses rather than open that door.
"""

from __future__ import annotations

import shutil
from typing import NoReturn

from rustchain.domain.policy.data import DatabaseGrant
from rustchain.steps.support.runtime import StepRunError
from rustchain.steps.support.sandboxing import SANDBOX_PATH


def refuse_postgres_backup(grant: DatabaseGrant) -> NoReturn:
    """Refuse: no confined pg_dump can reach a server (see the module's docstring)."""
    found = shutil.which("pg_dump", path=SANDBOX_PATH)
    why = (
        "a sandboxed program can reach no database server"
        if found
        else "pg_dump is not installed on this executor, and a sandboxed one could reach no server"
    )
    raise StepRunError(
        f"db_backup cannot back up PostgreSQL database '{grant.name}': {why}. Back it up with "
        "pg_dump where the operator runs it, or copy the data you need with sql_query"
    )
