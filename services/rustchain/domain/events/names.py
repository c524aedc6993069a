"""NATS subject and stream names for events, each built by one function and validated."""

from __future__ import annotations

import re

SUBJECT_ROOT = "rustchain"
STREAM_PREFIX = "RUSTCHAIN_"
NO_MISSION = "_"

# Lower case only, so that the upper-cased stream name stays one-to-one with the tenant.
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_MISSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_SERVICE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_EVENT_TYPE = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")


class EventNameError(ValueError):
    """A tenant, mission, service or event type that cannot be part of a subject or stream."""


def _check(kind: str, value: str, pattern: re.Pattern[str], expected: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise EventNameError(f"invalid {kind} {value!r}: expected {expected}")
    return value


def validate_tenant(tenant: str) -> str:
    """The tenant id, if it can name a subject token and a stream; else EventNameError."""
    return _check(
        "tenant",
        tenant,
        _TENANT,
        "1-63 characters of a-z, 0-9, '_' or '-', starting with a letter or digit",
    )


def validate_mission_id(mission_id: str) -> str:
    """The mission id (or '_' for none), if it can be a subject token; else EventNameError."""
    if mission_id == NO_MISSION:
        return mission_id
    return _check(
        "mission id",
        mission_id,
        _MISSION,
        f"'{NO_MISSION}' or 1-128 characters of A-Z, a-z, 0-9, '_' or '-',"
        " starting with a letter or digit",
    )


def validate_service(service: str) -> str:
    """The service name, if it can be a subject token; else EventNameError."""
    return _check(
        "service",
        service,
        _SERVICE,
        "1-32 characters of a-z, 0-9, '_' or '-', starting with a letter",
    )


def validate_event_type(event_type: str) -> str:
    """The event type, if it is a CamelCase name usable as a subject token; else EventNameError."""
    return _check(
        "event type",
        event_type,
        _EVENT_TYPE,
        "a CamelCase name of 1-64 letters and digits, such as 'StepSucceeded'",
    )


def event_subject(tenant: str, mission_id: str, service: str, event_type: str) -> str:
    """`rustchain.<tenant>.<mission>.<service>.<EventType>` for one event."""
    return ".".join(
        (
            SUBJECT_ROOT,
            validate_tenant(tenant),
            validate_mission_id(mission_id),
            validate_service(service),
            validate_event_type(event_type),
        )
    )


def tenant_subjects(tenant: str) -> str:
    """The wildcard subject covering every event of a tenant (its stream's subjects)."""
    return f"{SUBJECT_ROOT}.{validate_tenant(tenant)}.>"


def mission_subjects(tenant: str, mission_id: str) -> str:
    """The wildcard subject covering every event of one mission of a tenant."""
    return f"{SUBJECT_ROOT}.{validate_tenant(tenant)}.{validate_mission_id(mission_id)}.>"


def service_subjects(tenant: str, mission_id: str, service: str) -> str:
    """The wildcard subject covering one service's events of one mission of a tenant."""
    return (
        f"{SUBJECT_ROOT}.{validate_tenant(tenant)}.{validate_mission_id(mission_id)}"
        f".{validate_service(service)}.*"
    )


def stream_name(tenant: str) -> str:
    """`RUSTCHAIN_<TENANT>`: the JetStream stream holding one tenant's events."""
    return STREAM_PREFIX + validate_tenant(tenant).upper()


CHECKPOINT_SUBJECT_ROOT = "rustchain-checkpoints"
CHECKPOINT_STREAM_PREFIX = "CHECKPOINTS_"
"""Not RUSTCHAIN_: no tenant's events stream can share a checkpoint stream's name."""


def checkpoint_subject(tenant: str, store: str) -> str:
    """`rustchain-checkpoints.<tenant>.<store>`: where a store's checkpoints of a tenant go."""
    return f"{CHECKPOINT_SUBJECT_ROOT}.{validate_tenant(tenant)}.{validate_service(store)}"


def checkpoint_stream_name(tenant: str) -> str:
    """`CHECKPOINTS_<TENANT>`: the stream beside the tenant's events for its checkpoints."""
    return CHECKPOINT_STREAM_PREFIX + validate_tenant(tenant).upper()


def tenant_checkpoint_subjects(tenant: str) -> str:
    """`rustchain-checkpoints.<tenant>.>`: every checkpoint of a tenant (what its readers see)."""
    return f"{CHECKPOINT_SUBJECT_ROOT}.{validate_tenant(tenant)}.>"


OBJECT_BUCKET_PREFIX = "ARTIFACTS_"


def object_bucket(tenant: str) -> str:
    """The JetStream object store bucket that holds a tenant's artifacts (named like its stream)."""
    return OBJECT_BUCKET_PREFIX + validate_tenant(tenant).upper()


def object_stream(tenant: str) -> str:
    """The stream JetStream keeps the tenant's object store bucket in."""
    return f"OBJ_{object_bucket(tenant)}"
