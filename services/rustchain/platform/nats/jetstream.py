"""JetStream adapters for events: connecting, per-tenant streams, headers and reading back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
)

from rustchain.domain.access.nats_permissions import INBOX_ROOT, inbox_prefix
from rustchain.domain.events.envelope import EventDraft, EventEnvelope, decode_event
from rustchain.domain.events.names import (
    event_subject,
    mission_subjects,
    service_subjects,
    stream_name,
    tenant_subjects,
)
from rustchain.platform.credentials.tokens import cli_token, unverified_claims
from rustchain.platform.storage.home import DEFAULT_HOME, HOME_VARIABLE

MSG_ID_HEADER = "Nats-Msg-Id"
TRACEPARENT_HEADER = "traceparent"
NATS_ERRORS: tuple[type[BaseException], ...] = (
    nats.errors.Error,
    OSError,
    asyncio.TimeoutError,
)
"""What a NATS outage raises: the relay backs off on these, the CLI reports them."""


class NatsUnavailableError(RuntimeError):
    """The NATS server could not be reached or stopped answering."""


class NatsPermissionError(NatsUnavailableError):
    """The server refused this connection's credential, or a subject to it (another tenant's).

    An outage too for whoever retries outages (relays, the trainer): while the deployment restarts
    its auth callout, the server refuses every connection for a moment."""


NATS_OUTAGES: tuple[type[BaseException], ...] = (NatsUnavailableError, *NATS_ERRORS)
"""Everything a caller that rides out NATS outages (relays, readers) retries or tolerates."""


class NatsCredentialError(NatsPermissionError):
    """The server refused the connection itself: no token, or one expired or not ours."""


class StreamConfigError(RuntimeError):
    """JetStream refused a stream's configuration (limits, replicas): fix the settings."""


REPLICAS_VARIABLE = "RUSTCHAIN_NATS_REPLICAS"
MAX_REPLICAS = 5
"""JetStream's own limit on a stream's replicas."""


def stream_replicas(environ: Mapping[str, str] | None = None) -> int:
    """How many servers keep a copy of each stream: RUSTCHAIN_NATS_REPLICAS (default 1).

    3 on a three-node cluster (`rustchain up --nats-cluster 3` sets it), so that a stream keeps
    accepting and serving events while any one node is down.
    """
    env = os.environ if environ is None else environ
    text = (env.get(REPLICAS_VARIABLE) or "1").strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_REPLICAS:
        raise StreamConfigError(
            f"{REPLICAS_VARIABLE} must be a whole number from 1 to {MAX_REPLICAS}, found {text!r}"
        )
    return int(text)


def server_urls(url: str) -> list[str]:
    """The servers a NATS URL names: one, or a cluster's as a comma-separated list."""
    return [part.strip() for part in url.split(",") if part.strip()]


@dataclass(frozen=True)
class StreamSettings:
    """Limits of each tenant's stream; the duplicate window bounds how late a re-publish dedups."""

    duplicate_window_seconds: float = 600.0
    max_age_seconds: float = 0.0
    max_bytes: int = -1
    max_msgs: int = -1
    replicas: int = 1


def event_headers(event: EventDraft) -> dict[str, str]:
    """The headers an event is published with: `Nats-Msg-Id` = event id, for deduplication, and
    the trace context it was recorded under (`traceparent`), for consumers to continue."""
    return _headers(event.id, event.traceparent)


def _headers(event_id: str, traceparent: object) -> dict[str, str]:
    # The stored context, never the publisher's own: a relay is not part of the mission's trace.
    if isinstance(traceparent, str) and traceparent:
        return {MSG_ID_HEADER: event_id, TRACEPARENT_HEADER: traceparent}
    return {MSG_ID_HEADER: event_id}


@dataclass(frozen=True)
class EventRoute:
    """Where an event's canonical JSON is published, and which chain link it is."""

    tenant: str
    mission_id: str
    service: str
    sequence: int
    stream: str
    subject: str
    headers: dict[str, str]

    @classmethod
    def of(cls, data: bytes) -> EventRoute:
        """The route of an event from its canonical JSON, names validated, no full decode."""
        head = json.loads(data)
        tenant, mission, service = head["tenant"], head["mission_id"], head["service"]
        return cls(
            tenant=tenant,
            mission_id=mission,
            service=service,
            sequence=int(head["sequence"]),
            stream=stream_name(tenant),
            subject=event_subject(tenant, mission, service, head["type"]),
            headers=_headers(head["id"], head.get("traceparent")),
        )


async def last_published_sequence(
    js: JetStreamContext, tenant: str, mission_id: str, service: str
) -> int:
    """The chain sequence of the last event JetStream holds of a service's mission (0: none)."""
    subject = service_subjects(tenant, mission_id, service)
    try:
        message = await js.get_last_msg(stream_name(tenant), subject)
    except nats.js.errors.NotFoundError:
        return 0
    return int(json.loads(message.data or b"{}")["sequence"])


async def whole_chain_head(
    js: JetStreamContext, tenant: str, mission_id: str, service: str
) -> int | None:
    """The chain sequence up to which JetStream holds every event of a service's mission (0:
    none): its last event's, when the stream holds as many of the chain's events; else None.

    On a cluster, publishes in flight when a stream's leader dies can be lost while later ones
    reach the new leader: the chain then has a hole below its head, and the head proves nothing.
    """
    head = await last_published_sequence(js, tenant, mission_id, service)
    if head == 0:
        return 0
    subjects = service_subjects(tenant, mission_id, service)
    info = await js.stream_info(stream_name(tenant), subjects_filter=subjects)
    held = sum((info.state.subjects or {}).values())
    return head if held == head else None


def stream_config(tenant: str, settings: StreamSettings) -> StreamConfig:
    """The configuration of a tenant's stream: all its subjects, file storage, the limits."""
    return StreamConfig(
        name=stream_name(tenant),
        subjects=[tenant_subjects(tenant)],
        storage=StorageType.FILE,
        duplicate_window=settings.duplicate_window_seconds,
        max_age=settings.max_age_seconds,
        max_bytes=settings.max_bytes,
        max_msgs=settings.max_msgs,
        num_replicas=settings.replicas,
        # A full stream refuses new events rather than dropping old ones: it is an audit trail.
        discard=DiscardPolicy.NEW,
    )


async def ensure_stream(js: JetStreamContext, tenant: str, settings: StreamSettings) -> str:
    """Create the tenant's stream if it does not exist yet; its name."""
    name = stream_name(tenant)
    try:
        info = await js.stream_info(name)
        config = info.config
        limits = (config.max_bytes, config.max_msgs, config.discard, config.num_replicas or 1)
        wanted = (settings.max_bytes, settings.max_msgs, DiscardPolicy.NEW, settings.replicas)
        if limits != wanted:
            # A quota changed since the stream was made (raised, or lowered: then JetStream
            # refuses new events once the stream is over it, and drops nothing it holds), or
            # the replicas (a single server grown into a cluster: JetStream copies the stream).
            await js.update_stream(stream_config(tenant, settings))
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(stream_config(tenant, settings))
        except nats.js.errors.APIError as refused:
            # Another relay may have created it since the lookup (its config is ours); if the
            # stream is still missing and the server was not merely unavailable (503), it
            # refused the configuration, which no retry will change.
            try:
                await js.stream_info(name)
            except nats.js.errors.NotFoundError:
                if refused.code == 503:
                    raise refused from None
                raise StreamConfigError(
                    f"JetStream refused to create stream {name}: {refused.description}"
                ) from None
    return name


@dataclass(frozen=True)
class NatsCredentials:
    """What a connection presents: a RustChain token, and the inbox prefix its claims allow."""

    token: str | None = None
    inbox_prefix: str = INBOX_ROOT

    @classmethod
    def of_token(cls, token: str | None) -> NatsCredentials:
        """The credentials for a token (an admin's, or none, keeps the default inbox)."""
        claims = unverified_claims(token) if token else None
        return cls(token or None, inbox_prefix(claims) if claims is not None else INBOX_ROOT)

    @classmethod
    def of_process(cls) -> NatsCredentials:
        """This process's credential: RUSTCHAIN_TOKEN (the deployment gives its services the
        admin's; the CLI's --token sets it), else the embedded deployment's admin token."""
        # The home's path only: a connection must not create the folder as rustchain_home does.
        home = Path(os.environ.get(HOME_VARIABLE) or DEFAULT_HOME)
        return cls.of_token(cli_token(home, None))


# The server reports a refused subject asynchronously (an -ERR, not a reply, so the request would
# only time out); the error callback sets each connection's event for `ensure_readable`.
_refused: weakref.WeakKeyDictionary[Client, asyncio.Event] = weakref.WeakKeyDictionary()
_PERMISSIONS_VIOLATION = "permissions violation"


async def connect(
    url: str,
    timeout: float = 3.0,
    closed: asyncio.Event | None = None,
    credentials: NatsCredentials | None = None,
) -> Client:
    """A connection that fails rather than reconnecting silently, so callers see outages.

    `closed` is set when the connection is lost, so that a wait on acks can end at once. The
    connection presents `credentials`, by default those of this process (`of_process`).
    """
    presented = credentials if credentials is not None else NatsCredentials.of_process()
    refused = asyncio.Event()

    async def _closed() -> None:
        if closed is not None:
            closed.set()

    async def _error(error: Exception) -> None:
        # Other errors surface where they matter: as failed connects, requests and acks.
        if _PERMISSIONS_VIOLATION in str(error).lower():
            refused.set()

    try:
        # nats-py retries the first connect without end when max_reconnect_attempts is 0.
        # A cluster's servers are tried in turn (nats-py shuffles them) until one answers.
        client = nats.connect(
            server_urls(url),
            allow_reconnect=False,
            connect_timeout=int(max(1, timeout)),
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=_error,
            closed_cb=_closed,
            token=presented.token,
            inbox_prefix=presented.inbox_prefix,
        )
        connected = await asyncio.wait_for(client, 2 * timeout + 1)
    except nats.errors.Error as error:
        if "authorization violation" in str(error).lower():
            raise NatsCredentialError(
                f"NATS at {url} refused the credential (missing, expired or not signed by"
                " this deployment's key)"
            ) from None
        raise NatsUnavailableError(f"cannot reach NATS at {url}: {error}") from error
    except NATS_ERRORS as error:
        reason = str(error) or type(error).__name__
        raise NatsUnavailableError(f"cannot reach NATS at {url}: {reason}") from error
    _refused[connected] = refused
    return connected


async def ensure_readable(client: Client, tenant: str) -> None:
    """Return if this connection may read the tenant's stream and it exists; else raise
    NatsPermissionError (refused) or nats.js.errors.NotFoundError (no such stream)."""
    refusal = _refused.get(client) or asyncio.Event()
    info = asyncio.ensure_future(client.jetstream().stream_info(stream_name(tenant)))
    refused = asyncio.ensure_future(refusal.wait())
    try:
        await asyncio.wait({info, refused}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        refused.cancel()
    if not info.done():
        info.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await info
        raise NatsPermissionError(f"this credential may not read tenant '{tenant}'")
    info.result()


@dataclass(frozen=True)
class StoredMessage:
    """An event as JetStream holds it: its stream sequence and its Nats-Msg-Id."""

    sequence: int
    msg_id: str | None
    event: EventEnvelope


async def read_events(
    js: JetStreamContext,
    tenant: str,
    mission_id: str | None = None,
    *,
    follow: bool = False,
    batch: int = 500,
    wait: float = 1.0,
) -> AsyncIterator[StoredMessage]:
    """A tenant's (or one mission's) events in stream order; with `follow`, then new ones."""
    stream = stream_name(tenant)
    subject = (
        tenant_subjects(tenant) if mission_id is None else mission_subjects(tenant, mission_id)
    )
    await js.stream_info(stream)
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=30.0,
    )
    subscription = await js.pull_subscribe(subject, stream=stream, config=config)
    try:
        pending = (await subscription.consumer_info()).num_pending or 0
        while follow or pending > 0:
            try:
                messages = await subscription.fetch(batch, timeout=wait)
            except nats.errors.TimeoutError:
                if follow:
                    continue
                raise NatsUnavailableError(
                    f"JetStream stopped delivering {subject} with {pending} event(s) still pending"
                ) from None
            for message in messages:
                headers = message.headers or {}
                yield StoredMessage(
                    message.metadata.sequence.stream,
                    headers.get(MSG_ID_HEADER),
                    decode_event(json.loads(message.data)),
                )
                pending = message.metadata.num_pending or 0
    finally:
        # The consumer is ephemeral: if this fails, the server removes it when it goes idle.
        with contextlib.suppress(*NATS_ERRORS):
            await subscription.unsubscribe()


@dataclass(frozen=True)
class StreamUsage:
    """How much a tenant's stream holds, and the size at which it refuses events."""

    held_bytes: int
    max_bytes: int


class StreamUsageReader:
    """Reads tenants' stream usage over one lazily opened connection; None when it cannot tell.

    Missions must not stop because NATS is down (the store is the record, the relay catches up),
    so an unreachable server or a missing stream is "no known limit", not a refusal.
    """

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout
        self._client: Client | None = None

    async def usage(self, tenant: str) -> StreamUsage | None:
        """The stream's bytes and its max_bytes (-1: none), or None when unknown."""
        try:
            if self._client is None or self._client.is_closed:
                self._client = await connect(self.url, timeout=self.timeout)
            jetstream = self._client.jetstream(timeout=self.timeout)
            info = await jetstream.stream_info(stream_name(tenant))
        except nats.js.errors.NotFoundError:
            return None
        except NATS_OUTAGES:
            await self.close()
            return None
        return StreamUsage(info.state.bytes, info.config.max_bytes or -1)

    async def close(self) -> None:
        """Close the connection, if one is open."""
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(*NATS_ERRORS):
                await client.close()
