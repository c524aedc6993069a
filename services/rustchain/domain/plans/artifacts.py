"""Large values as content-addressed artifacts: an event records a reference, never the bytes.

A step's output (or a value it is handed) larger than the inline threshold is taken out of the
fact and replaced by `{"$artifact": {sha256, size, media_type, preview}}`; the bytes are kept in
the tenant's artifact store under their SHA-256, so the event stays small and whoever reads it
can fetch the bytes and prove they are the ones recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rustchain.domain.plans.plan import canonical_json

ARTIFACT_KEY = "$artifact"
"""The one key of the object that stands for an artifact in a recorded value."""
ARTIFACT_MARKER = b'"$artifact"'
"""How a stored event that references an artifact can be told from its bytes, without parsing."""
INLINE_BYTES_SETTING = "RUSTCHAIN_ARTIFACT_INLINE_BYTES"
DEFAULT_INLINE_BYTES = 64 * 1024
"""Values up to this size stay in the event: most outputs are small, and reading them back
needs no second lookup; larger ones go to the artifact store."""
MIN_INLINE_BYTES = 1024
PREVIEW_CHARS = 200
"""How much of a text artifact its reference shows, so `status` says what it is at a glance."""
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(ValueError):
    """An artifact that is missing, altered, or named by something that is not a SHA-256."""


class ArtifactRef(BaseModel):
    """What an event records of an artifact: its SHA-256, size, media type and a short preview."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sha256: Annotated[str, Field(pattern=_SHA256.pattern)]
    size: Annotated[int, Field(ge=0)]
    media_type: str
    preview: str = ""

    def to_value(self) -> dict[str, Any]:
        """The object that stands for the artifact in a recorded value."""
        return {ARTIFACT_KEY: self.model_dump(mode="json")}

    @classmethod
    def of_value(cls, value: Any) -> ArtifactRef | None:
        """The reference a recorded value is, or None when it is an ordinary value."""
        if not isinstance(value, Mapping) or set(value) != {ARTIFACT_KEY}:
            return None
        try:
            return cls.model_validate(value[ARTIFACT_KEY])
        except ValidationError:
            return None


@dataclass(frozen=True)
class Artifact:
    """An artifact's bytes with the reference that names them."""

    ref: ArtifactRef
    data: bytes


def sha256_of(data: bytes) -> str:
    """The lower-case hex SHA-256 of some bytes: an artifact's name."""
    return hashlib.sha256(data).hexdigest()


def check_sha256(text: str) -> str:
    """A SHA-256 as artifacts are named by, or ArtifactError saying what was expected."""
    if not _SHA256.fullmatch(text):
        raise ArtifactError(f"{text!r} is not an artifact name: expected 64 lower-case hex digits")
    return text


def artifact(data: bytes, media_type: str, preview: str = "") -> Artifact:
    """Bytes as an artifact, named by their SHA-256."""
    ref = ArtifactRef(
        sha256=sha256_of(data), size=len(data), media_type=media_type, preview=preview
    )
    return Artifact(ref, data)


def externalize(value: Any, inline_bytes: int) -> tuple[Any, list[Artifact]]:
    """The value with each text over `inline_bytes` replaced by its reference, and the artifacts.

    When what remains is still larger than `inline_bytes` (many small parts), the value becomes
    one JSON artifact as a whole: an event never holds more than `inline_bytes` of a value.
    Nothing is cut: reading the references back gives the value exactly.
    """
    found: list[Artifact] = []
    replaced = _externalize_texts(value, inline_bytes, found)
    whole = canonical_json(replaced).encode("utf-8")
    if len(whole) > inline_bytes and ArtifactRef.of_value(replaced) is None:
        found = [artifact(canonical_json(value).encode("utf-8"), JSON)]
        return found[0].ref.to_value(), found
    return replaced, found


def _externalize_texts(value: Any, inline_bytes: int, found: list[Artifact]) -> Any:
    if isinstance(value, str):
        # A character takes at most 4 bytes in UTF-8: short texts are passed without encoding.
        if len(value) * 4 <= inline_bytes:
            return value
        data = value.encode("utf-8")
        if len(data) <= inline_bytes:
            return value
        made = artifact(data, TEXT, value[:PREVIEW_CHARS])
        found.append(made)
        return made.ref.to_value()
    if isinstance(value, dict):
        return {k: _externalize_texts(v, inline_bytes, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_externalize_texts(v, inline_bytes, found) for v in value]
    return value


def references(value: Any) -> Iterator[ArtifactRef]:
    """Every artifact a recorded value references, in document order."""
    ref = ArtifactRef.of_value(value)
    if ref is not None:
        yield ref
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def verified(ref: ArtifactRef, data: bytes | None) -> bytes:
    """The bytes of a referenced artifact, or ArtifactError when they are missing or altered."""
    if data is None:
        raise ArtifactError(f"artifact {ref.sha256} ({ref.size:,} bytes) is missing")
    digest = sha256_of(data)
    if digest != ref.sha256 or len(data) != ref.size:
        raise ArtifactError(
            f"artifact {ref.sha256} was altered: its bytes ({len(data):,}) hash to {digest}"
        )
    return data


def decoded(ref: ArtifactRef, data: bytes) -> Any:
    """The value an artifact's bytes stand for: a text, or the JSON value it holds."""
    if ref.media_type == JSON:
        return json.loads(data)
    return data.decode("utf-8")


def internalize(value: Any, read: Callable[[ArtifactRef], bytes | None]) -> Any:
    """The value with every reference replaced by the verified content it names."""
    ref = ArtifactRef.of_value(value)
    if ref is not None:
        return decoded(ref, verified(ref, read(ref)))
    if isinstance(value, dict):
        return {k: internalize(v, read) for k, v in value.items()}
    if isinstance(value, list):
        return [internalize(v, read) for v in value]
    return value


def inline_bytes_setting(environ: Mapping[str, str]) -> int:
    """The inline threshold `RUSTCHAIN_ARTIFACT_INLINE_BYTES` sets, or ArtifactError."""
    text = environ.get(INLINE_BYTES_SETTING, "").strip()
    if not text:
        return DEFAULT_INLINE_BYTES
    try:
        value = int(text)
    except ValueError:
        raise ArtifactError(f"{INLINE_BYTES_SETTING} must be a whole number of bytes") from None
    if value < MIN_INLINE_BYTES:
        raise ArtifactError(f"{INLINE_BYTES_SETTING} must be at least {MIN_INLINE_BYTES} bytes")
    return value


def describe_ref(ref: ArtifactRef, tenant: str) -> str:
    """One line for a person: what the artifact is, how it starts, and how to fetch it."""
    start = ref.preview.replace("\n", "⏎")[:60]
    shown = f', starting "{start}…"' if start.strip() else ""
    return (
        f"artifact {ref.sha256} ({ref.size:,} bytes, {ref.media_type}{shown});"
        f" rustchain artifact get {ref.sha256} --tenant {tenant} --out FILE"
    )
