"""What a credential may do on NATS: the subjects a connection may publish and subscribe to.

A tenant's connection reads its own stream and nothing else; an auditor's reads the streams of
the tenants its token names; an admin's (the services') is unrestricted. Nobody but the services
may publish events: a tenant's client reads its history, it never writes it.

Replies to a client's JetStream requests arrive on its inbox. Inboxes would otherwise share one
`_INBOX.>` space, where any client could subscribe to another's replies (and so to another
tenant's events), so each credential gets an inbox prefix of its own and may subscribe only there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rustchain.domain.access.credentials import Claims, Role
from rustchain.domain.events.names import (
    checkpoint_stream_name,
    object_stream,
    stream_name,
    tenant_checkpoint_subjects,
    tenant_subjects,
)

INBOX_ROOT = "_INBOX"

# The JetStream API requests a reader of one stream makes (stream and consumer info, an ephemeral
# pull consumer and its deletion, message get), and the acknowledgements of its deliveries. Not
# granted: $JS.API.INFO and $JS.API.STREAM.NAMES/LIST, which would show which tenants exist.
_READER_REQUESTS = (
    "$JS.API.STREAM.INFO.{stream}",
    "$JS.API.STREAM.MSG.GET.{stream}",
    "$JS.API.DIRECT.GET.{stream}",
    "$JS.API.DIRECT.GET.{stream}.>",
    "$JS.API.CONSUMER.CREATE.{stream}",
    "$JS.API.CONSUMER.CREATE.{stream}.>",
    "$JS.API.CONSUMER.INFO.{stream}.>",
    "$JS.API.CONSUMER.DELETE.{stream}.>",
    "$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
    "$JS.ACK.{stream}.>",
)


@dataclass(frozen=True)
class SubjectPermissions:
    """The subjects a connection may publish to and subscribe to (NATS wildcards allowed)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def inbox_prefix(claims: Claims) -> str:
    """The inbox prefix a connection with these claims must use (and may alone subscribe to)."""
    if claims.role is Role.TENANT and claims.tenant is not None:
        return f"{INBOX_ROOT}.tenant-{claims.tenant}"
    # A subject token cannot hold every character a `sub` claim may, so it is named by its hash.
    digest = hashlib.sha256(f"{claims.role.value}:{claims.sub}".encode()).hexdigest()[:24]
    return f"{INBOX_ROOT}.{claims.role.value}-{digest}"


def readable_tenants(claims: Claims) -> tuple[str, ...] | None:
    """The tenants whose events these claims may read; None for every tenant (admin)."""
    if claims.role is Role.ADMIN:
        return None
    if claims.role is Role.TENANT:
        return (claims.tenant,) if claims.tenant is not None else ()
    return tuple(claims.tenants)


def subject_permissions(claims: Claims) -> SubjectPermissions | None:
    """The connection's permissions; None when unrestricted (the admin, that is the services)."""
    tenants = readable_tenants(claims)
    if tenants is None:
        return None
    # A reader of a tenant reads its events, the checkpoints its auditors prove them against,
    # and the artifacts its events reference (its object store bucket, read by an ordered
    # consumer, which answers the server's flow control).
    names = (stream_name, checkpoint_stream_name, object_stream)
    streams = [name(t) for t in tenants for name in names]
    publish = [request.format(stream=stream) for stream in streams for request in _READER_REQUESTS]
    publish += [f"$JS.FC.{object_stream(t)}.>" for t in tenants]
    subscribe = [
        f"{inbox_prefix(claims)}.>",
        *(s for t in tenants for s in (tenant_subjects(t), tenant_checkpoint_subjects(t))),
    ]
    return SubjectPermissions(tuple(publish), tuple(subscribe))
