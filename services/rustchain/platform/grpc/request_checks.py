"""Checks of request fields shared by the servicers: present, bounded and well formed.

Each refusal is a BadRequestError (INVALID_ARGUMENT in every servicer's table) whose message names
the field and what was expected, so a caller can fix its request from the message alone.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from rustchain.domain.events.names import (
    NO_MISSION,
    EventNameError,
    validate_mission_id,
    validate_tenant,
)
from rustchain.platform.grpc.client import TENANT_METADATA, tenant_of

KIB = 1024
MIB = 1024 * KIB
MAX_NAME_BYTES = 256
"""Collections, document ids, file names, variable names."""
MAX_PATH_BYTES = 4 * KIB
MAX_REASON_BYTES = 4 * KIB
MAX_QUERY_BYTES = 16 * KIB
MAX_METADATA_BYTES = 64 * KIB
MAX_VARIABLE_BYTES = 64 * KIB
MAX_VARIABLES = 256
MAX_DOCUMENT_BYTES = MIB
"""Mission text and memory content: far above any real one, far below the message limit."""
MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
_SHOWN_CHARACTERS = 80


class BadRequestError(ValueError):
    """A request field is missing, malformed, too large or out of range; the message names it."""


def _shown(value: str) -> str:
    """The value as a message quotes it: repr, cut short so a huge value never fills a log line."""
    if len(value) <= _SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value):,} characters)"


def check_present(field: str, value: str) -> str:
    """The text, if it is not empty."""
    if not value:
        raise BadRequestError(f"{field} is required")
    return value


def check_text(field: str, value: str, limit: int, *, required: bool = False) -> str:
    """The text, if present when required and at most `limit` bytes of UTF-8."""
    if required:
        check_present(field, value)
    # Characters are 1 to 4 bytes: encode only when the character count cannot decide.
    size = len(value) if len(value) * 4 <= limit else len(value.encode("utf-8"))
    if size > limit:
        raise BadRequestError(f"{field} is {size:,} bytes; the limit is {limit:,} bytes")
    return value


def check_name(field: str, value: str, *, required: bool = True) -> str:
    """A name: at most MAX_NAME_BYTES, without control characters (it ends up in messages)."""
    check_text(field, value, MAX_NAME_BYTES, required=required)
    if any(unicodedata.category(character) == "Cc" for character in value):
        raise BadRequestError(f"{field} must not contain control characters, found {_shown(value)}")
    return value


def check_mission_id(field: str, value: str, *, required: bool = True) -> str:
    """A mission id as the event names take it ('' when optional and absent)."""
    if not value and not required:
        return value
    check_text(field, value, MAX_NAME_BYTES, required=True)
    try:
        if value == NO_MISSION:  # the placeholder of events outside missions, never a mission
            raise EventNameError(f"invalid mission id {value!r}: it stands for no mission")
        return validate_mission_id(value)
    except EventNameError as error:
        raise BadRequestError(f"{field}: {error}") from None


def check_count(field: str, value: int, low: int, high: int) -> int:
    """A whole number between `low` and `high`, both included."""
    if not low <= value <= high:
        raise BadRequestError(f"{field} must be between {low:,} and {high:,}, found {value:,}")
    return value


def check_json_object(field: str, value: str, limit: int | None = None) -> dict[str, Any]:
    """The JSON object the text holds ('' is {}), of at most `limit` bytes when one is given."""
    if limit is not None:
        check_text(field, value, limit)
    try:
        parsed = json.loads(value or "{}")
    except json.JSONDecodeError as error:
        raise BadRequestError(
            f"{field} is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise BadRequestError(f"{field} is nested too deeply") from None
    if not isinstance(parsed, dict):
        raise BadRequestError(f"{field} must be a JSON object, found {type(parsed).__name__}")
    return parsed


def check_absolute_path(field: str, value: str) -> str:
    """An absolute POSIX path, or '' for none."""
    check_text(field, value, MAX_PATH_BYTES)
    if "\x00" in value:
        raise BadRequestError(f"{field} must not contain NUL characters")
    if value and not PurePosixPath(value).is_absolute():
        raise BadRequestError(f"{field} must be an absolute path, found {_shown(value)}")
    return value


def check_variables(field: str, variables: Mapping[str, str]) -> dict[str, str]:
    """Variables as `--var` gives them: at most MAX_VARIABLES, each name and value bounded."""
    if len(variables) > MAX_VARIABLES:
        raise BadRequestError(
            f"{field} has {len(variables):,} entries; the limit is {MAX_VARIABLES:,}"
        )
    for name, value in variables.items():
        check_name(f"a name in {field}", name)
        check_text(f"{field}[{name!r}]", value, MAX_VARIABLE_BYTES)
    return dict(variables)


def request_tenant(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The tenant the call's metadata names (default 'default'), if it is a valid tenant id."""
    tenant = tenant_of(metadata)
    if len(tenant) > MAX_NAME_BYTES:
        raise BadRequestError(
            f"the {TENANT_METADATA} metadata is {len(tenant):,} characters; a tenant id has 1-63"
        )
    try:
        return validate_tenant(tenant)
    except EventNameError as error:
        raise BadRequestError(f"the {TENANT_METADATA} metadata: {error}") from None
