"""Signed checkpoints of a tenant's log in one store, as text in the C2SP signed-note format.

A checkpoint's body is three lines and one extension (C2SP tlog-checkpoint):

    rustchain/<store>/<tenant>
    <size>
    <base64 root hash>
    time <ISO 8601 UTC>

followed by a blank line and one signature line, `— <key name> <base64(key id || signature)>`,
where the key id is the first 4 bytes of SHA-256(key name || "\\n" || 0x01 || public key) and
the signature is Ed25519 over the body. Signing and checking the signature are the caller's
(the domain holds no keys); this module only builds and parses the text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

ORIGIN_PREFIX = "rustchain"
KEY_NAME = "rustchain-checkpoint"
ED25519_ALGORITHM = b"\x01"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class CheckpointError(ValueError):
    """Text that is not a checkpoint; the message says what is wrong."""


def origin_of(store: str, tenant: str) -> str:
    """The origin line naming one tenant's log in one store."""
    return f"{ORIGIN_PREFIX}/{store}/{tenant}"


def key_id(public_key: bytes, name: str = KEY_NAME) -> bytes:
    """The 4-byte id a signature line carries for a raw Ed25519 public key."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_ALGORITHM + public_key).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """The size and root hash of a tenant's log in a store at one moment, and its signature."""

    store: str
    tenant: str
    size: int
    root: bytes
    time: datetime
    signature: bytes = b""
    signer: bytes = b""
    """The key id of the signature line (4 bytes)."""

    @property
    def origin(self) -> str:
        """The log this checkpoint is of."""
        return origin_of(self.store, self.tenant)

    def body(self) -> bytes:
        """The signed text."""
        root = base64.b64encode(self.root).decode()
        return f"{self.origin}\n{self.size}\n{root}\ntime {self.time.isoformat()}\n".encode()

    def note(self) -> str:
        """The whole signed note: body, blank line, signature line."""
        line = base64.b64encode(self.signer + self.signature).decode()
        return f"{self.body().decode()}\n\u2014 {KEY_NAME} {line}\n"

    def describe(self) -> str:
        """One line naming the log, its size and root."""
        return f"{self.origin} size {self.size} root {self.root.hex()[:16]}… at {self.time:%c}"


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint a signed note holds (its signature not yet checked), or CheckpointError."""
    body, separator, signatures = text.partition("\n\n")
    lines = body.split("\n")
    if not separator or len(lines) != 4:
        raise CheckpointError("expected 4 body lines, a blank line and a signature line")
    origin, size, root, time = lines
    parts = origin.split("/")
    if len(parts) != 3 or parts[0] != ORIGIN_PREFIX or not all(map(_NAME.fullmatch, parts[1:])):
        raise CheckpointError(f"origin {origin!r} is not rustchain/<store>/<tenant>")
    try:
        decoded_root = base64.b64decode(root, validate=True)
        moment = datetime.fromisoformat(time.removeprefix("time "))
        size_value = int(size)
    except (ValueError, binascii.Error) as error:
        raise CheckpointError(f"unreadable size, root or time: {error}") from None
    if len(decoded_root) != 32 or size_value < 0 or not time.startswith("time "):
        raise CheckpointError("the root must be 32 bytes, the size >= 0, the time 'time <ISO>'")
    for line in signatures.splitlines():
        fields = line.split(" ")
        if len(fields) == 3 and fields[0] == "\u2014" and fields[1] == KEY_NAME:
            try:
                blob = base64.b64decode(fields[2], validate=True)
            except binascii.Error:
                raise CheckpointError("the signature line is not base64") from None
            if len(blob) != 4 + 64:
                raise CheckpointError("the signature line must hold a key id and 64 bytes")
            return Checkpoint(
                parts[1], parts[2], size_value, decoded_root, moment, blob[4:], blob[:4]
            )
    raise CheckpointError(f"no signature line by {KEY_NAME}")
