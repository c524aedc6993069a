"""Request bytes to messages on every server: too large, undecodable or carrying an unknown enum
number, a request is answered INVALID_ARGUMENT naming the problem, and the server carries on.

grpc.aio decodes a request before any handler runs and answers a decoding error (a string field of
invalid UTF-8, a corrupt wire format) with UNKNOWN, "Unexpected <class 'DecodeError'>", and an
error log with a traceback. The guard's deserializer never raises: it hands the handler a refusal,
which the wrapped behaviour turns into INVALID_ARGUMENT.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

MAX_MESSAGE_VARIABLE = "RUSTCHAIN_GRPC_MAX_MESSAGE_BYTES"
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
TRANSPORT_FACTOR = 2
"""grpc core refuses (RESOURCE_EXHAUSTED) what exceeds this many times the limit, unread, so a huge
request is never buffered whole; between the limit and that, the guard says INVALID_ARGUMENT."""

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
# The stubs type handler behaviours as synchronous; a grpc.aio server's are coroutines or async
# generators, so the guard calls them through this looser type.
Behaviour: TypeAlias = Callable[[Any, Any], Any]


class MessageLimitError(ValueError):
    """The configured request size limit is not a positive whole number of bytes."""


def max_message_bytes(environ: Mapping[str, str]) -> int:
    """The largest request a server decodes: RUSTCHAIN_GRPC_MAX_MESSAGE_BYTES, else 4 MiB."""
    text = environ.get(MAX_MESSAGE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_MESSAGE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise MessageLimitError(f"{MAX_MESSAGE_VARIABLE} must be a positive integer, not {text!r}")
    return value


def transport_options(limit: int) -> list[tuple[str, int]]:
    """Server options letting requests up to TRANSPORT_FACTOR times the limit reach the guard."""
    return [("grpc.max_receive_message_length", min(limit * TRANSPORT_FACTOR, 2**31 - 1))]


@dataclass(frozen=True)
class _Refused:
    """What the deserializer returns instead of a message it will not hand to the servicer."""

    reason: str


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[position]  # IndexError when truncated: the caller gives up on naming a field
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7


def _bad_utf8_field(data: bytes, message: Descriptor, prefix: str = "") -> str | None:
    """The dotted name of a string field whose bytes are not UTF-8, found by walking the wire."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, position = _varint(data, position)
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        elif wire_type == 2:
            size, position = _varint(data, position)
            chunk, position = data[position : position + size], position + size
            field = message.fields_by_number.get(number)
            if field is None:
                continue
            if field.type == FieldDescriptor.TYPE_STRING:
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError:
                    return prefix + field.name
            elif field.message_type is not None:
                found = _bad_utf8_field(chunk, field.message_type, f"{prefix}{field.name}.")
                if found is not None:
                    return found
        else:
            return None  # groups, or not protobuf at all
    return None


def _undecodable(data: bytes, method: str, error: DecodeError) -> str:
    try:
        request = descriptor_pool.Default().FindMethodByName(method.strip("/").replace("/", "."))
        field = _bad_utf8_field(data, request.input_type)
    except (KeyError, IndexError):
        field = None
    if field is not None:
        return f"field '{field}' of the {method} request is not valid UTF-8"
    return f"the {method} request cannot be decoded: {error}"


def _holds_enums(message: Descriptor, seen: frozenset[str]) -> bool:
    if message.full_name in seen:
        return False  # a recursive type: its fields are being looked at already
    inner = seen | {message.full_name}
    return any(
        field.enum_type is not None
        or (field.message_type is not None and _holds_enums(field.message_type, inner))
        for field in message.fields
    )


@functools.cache
def _may_hold_enums(message: Descriptor) -> bool:
    """Whether a message type has an enum field at any depth (most requests have none)."""
    return _holds_enums(message, frozenset())


def _unknown_enum(message: Message, prefix: str = "") -> str | None:
    """The first enum field (at any depth) holding a number its enum does not define."""
    for declared, value in message.ListFields():
        name = prefix + declared.name
        entry = declared.message_type
        if entry is not None and entry.GetOptions().map_entry:
            field, values = entry.fields_by_name["value"], list(value.values())
        else:
            field, values = declared, list(value) if declared.is_repeated else [value]
        for item in values:
            if field.enum_type is not None and item not in field.enum_type.values_by_number:
                return f"field '{name}' has no value {item} in {field.enum_type.full_name}"
            if field.message_type is not None:
                found = _unknown_enum(item, f"{name}.")
                if found is not None:
                    return found
    return None


def _deserializer(
    decode: Callable[[bytes], Any], method: str, limit: int
) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        if len(data) > limit:
            return _Refused(
                f"the {method} request is {len(data):,} bytes; the limit is {limit:,} bytes"
                f" ({MAX_MESSAGE_VARIABLE})"
            )
        try:
            request = decode(data)
        except DecodeError as error:
            return _Refused(_undecodable(data, method, error))
        if isinstance(request, Message) and _may_hold_enums(request.DESCRIPTOR):
            problem = _unknown_enum(request)
            if problem is not None:
                return _Refused(f"{problem} (in the {method} request)")
        return request

    return deserialize


async def _refuse(context: Context, refused: _Refused) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, refused.reason)


def _guarded(handler: Handler, method: str, limit: int) -> Handler:
    """The handler with a deserializer that never raises and a behaviour that refuses for it."""
    if handler.request_streaming or handler.request_deserializer is None:
        return handler  # health and reflection streams: nothing of ours to guard
    arguments = {
        "request_deserializer": _deserializer(handler.request_deserializer, method, limit),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream is not None:
        stream: Behaviour = handler.unary_stream

        async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
            if isinstance(request, _Refused):
                await _refuse(context, request)
            replies = stream(request, context)
            if inspect.isawaitable(replies):  # a handler that writes with context.write
                await replies
                return
            async for reply in replies:
                yield reply

        return grpc.unary_stream_rpc_method_handler(unary_stream, **arguments)
    unary: Behaviour | None = handler.unary_unary
    if unary is None:
        return handler

    async def unary_unary(request: Any, context: Context) -> Any:
        if isinstance(request, _Refused):
            await _refuse(context, request)
        reply = unary(request, context)
        return await reply if inspect.isawaitable(reply) else reply

    return grpc.unary_unary_rpc_method_handler(unary_unary, **arguments)


class RequestGuard(grpc.aio.ServerInterceptor):
    """Answers requests that are too large, undecodable or hold unknown enum numbers itself.

    It must be the last (innermost) interceptor, so that authentication is decided first: a
    caller without a valid token is refused as such whatever bytes it sent.
    """

    def __init__(self, limit: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._limit = limit

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """The method's handler, guarded."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _guarded(handler, handler_call_details.method, self._limit)
