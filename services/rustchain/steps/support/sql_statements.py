"""What a SQL text does, by statement, read with sqlglot: the kinds the `databases` policy
section allows or refuses (`read`, `write`, `schema`, `other`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rustchain.domain.policy.data import STATEMENT_KINDS, StatementKind
from rustchain.domain.policy.data_rules import ANY_KIND
from rustchain.steps.support.errors import StepRunError

if TYPE_CHECKING:
    from sqlglot import exp

# sqlglot logs a warning for each statement it keeps as text (`other` here): a step's SQL is the
# mission's business, not the executor's log.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

# Dialects a statement is read in before the engine is known (the verifier): the kinds found in
# any of them are the statement's kinds.
DIALECTS = ("sqlite", "postgres")
KIND_ORDER: list[str] = list(STATEMENT_KINDS)


def statement_kind(statement: exp.Expr) -> StatementKind:
    """The kind of one parsed statement; what sqlglot only kept as text is `other`."""
    from sqlglot import exp  # sqlglot loads when SQL is classified, not when a mission is read

    writes = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.TruncateTable)
    schema = (exp.Create, exp.Drop, exp.Alter)
    if isinstance(statement, schema) or statement.find(exp.Into) is not None:
        return "schema"
    if isinstance(statement, writes) or statement.find(*writes) is not None:
        return "write"
    if isinstance(statement, exp.Query) and statement.find(exp.Command) is None:
        return "read"
    return "other"


def parse_statements(query: str, dialect: str) -> list[exp.Expr]:
    """The statements of a SQL text, or a StepRunError saying it is no SQL sqlglot reads."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        parsed = sqlglot.parse(query, read=dialect)
    except SqlglotError as error:
        raise StepRunError(f"query is not SQL that can be classified: {error}") from None
    statements = [s for s in parsed if s is not None]
    if not statements:
        raise StepRunError("query holds no SQL statement")
    return statements


def statement_kinds(query: str, dialect: str) -> list[StatementKind]:
    """The distinct kinds of the statements of a SQL text, in the order of STATEMENT_KINDS."""
    found = {statement_kind(s) for s in parse_statements(query, dialect)}
    return [k for k in STATEMENT_KINDS if k in found]


def possible_kinds(query: object) -> list[str]:
    """The kinds a parameter text may be, for the verifier: a text with a reference (`{`) may be
    any kind; otherwise the kinds it has in the dialects that read it (the runtime classifies it
    again in its database's dialect), `other` if none does."""
    if not isinstance(query, str) or "{" in query:
        return [ANY_KIND]
    kinds: dict[str, None] = {}
    for dialect in DIALECTS:
        try:
            kinds.update(dict.fromkeys(statement_kinds(query, dialect)))
        except StepRunError:
            continue
    if not kinds:
        return ["other"]
    return sorted(kinds, key=KIND_ORDER.index)
