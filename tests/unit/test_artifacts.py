"""Large values become artifact references and come back exactly, verified by their SHA-256."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from rustchain.domain.events.names import object_bucket, object_stream
from rustchain.domain.events.size import payload_bytes
from rustchain.domain.plans.artifacts import (
    ARTIFACT_KEY,
    DEFAULT_INLINE_BYTES,
    JSON,
    TEXT,
    Artifact,
    ArtifactError,
    ArtifactRef,
    externalize,
    inline_bytes_setting,
    internalize,
    references,
    verified,
)
from rustchain.domain.plans.bindings import ArtifactInTextError, RenderContext, render

INLINE = 1024


def _reader(artifacts: list[Artifact]) -> Any:
    held = {a.ref.sha256: a.data for a in artifacts}
    return lambda ref: held.get(ref.sha256)


def test_a_large_text_becomes_a_reference_and_comes_back_exactly() -> None:
    text = "é" * 5000
    output = {"stdout": text, "status": 0, "lines": ["short"]}

    recorded, made = externalize(output, INLINE)

    [item] = made
    assert item.data == text.encode("utf-8")
    assert item.ref.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert (item.ref.size, item.ref.media_type) == (10_000, TEXT)
    assert item.ref.preview == "é" * 200
    assert recorded["status"] == 0 and recorded["lines"] == ["short"]
    assert ArtifactRef.of_value(recorded["stdout"]) == item.ref
    assert payload_bytes(recorded) < INLINE
    assert internalize(recorded, _reader(made)) == output


def test_values_up_to_the_inline_size_stay_as_they_are() -> None:
    output = {"stdout": "x" * (INLINE - 20), "n": 1}
    assert payload_bytes(output) <= INLINE

    recorded, made = externalize(output, INLINE)

    assert (recorded, made) == (output, [])


def test_many_small_parts_become_one_json_artifact() -> None:
    output = {"rows": [{"id": n, "name": f"row {n}"} for n in range(500)]}

    recorded, made = externalize(output, INLINE)

    [item] = made
    assert item.ref.media_type == JSON
    assert ArtifactRef.of_value(recorded) == item.ref
    assert internalize(recorded, _reader(made)) == output


def test_a_missing_or_altered_artifact_is_refused_naming_it() -> None:
    recorded, [item] = externalize("x" * 5000, INLINE)
    ref = item.ref

    with pytest.raises(ArtifactError, match=f"artifact {ref.sha256} .5,000 bytes. is missing"):
        internalize(recorded, lambda _: None)
    with pytest.raises(ArtifactError, match=f"artifact {ref.sha256} was altered"):
        verified(ref, b"y" * 5000)
    with pytest.raises(ArtifactError, match="was altered"):
        verified(ref, b"x" * 5000 + b"more")


def test_only_an_object_with_the_one_key_and_a_whole_reference_is_a_reference() -> None:
    good = {"sha256": "a" * 64, "size": 3, "media_type": TEXT}

    assert ArtifactRef.of_value({ARTIFACT_KEY: good}) is not None
    assert ArtifactRef.of_value({ARTIFACT_KEY: good, "other": 1}) is None
    assert ArtifactRef.of_value({ARTIFACT_KEY: {**good, "sha256": "not hex"}}) is None
    assert ArtifactRef.of_value("$artifact") is None
    nested = {"a": [{ARTIFACT_KEY: good}], "b": {ARTIFACT_KEY: good}}
    assert len(list(references(nested))) == 2


def test_each_tenant_has_its_own_bucket_named_like_its_stream() -> None:
    assert object_bucket("acme-eu") == "ARTIFACTS_ACME-EU"
    assert object_stream("acme") == "OBJ_ARTIFACTS_ACME"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", DEFAULT_INLINE_BYTES), ("4096", 4096), ("10", None), ("lots", None)],
)
def test_the_inline_size_setting_is_checked(text: str, expected: int | None) -> None:
    environ = {"RUSTCHAIN_ARTIFACT_INLINE_BYTES": text}
    if expected is None:
        with pytest.raises(ArtifactError, match="RUSTCHAIN_ARTIFACT_INLINE_BYTES"):
            inline_bytes_setting(environ)
    else:
        assert inline_bytes_setting(environ) == expected


def test_an_artifact_is_handed_whole_and_never_pasted_into_a_text() -> None:
    recorded, _ = externalize({"stdout": "x" * 5000}, INLINE)
    context = RenderContext({}, {"big": recorded}, {}, ("big",))

    whole = render({"content": "{big.stdout}"}, context)

    assert ArtifactRef.of_value(whole["content"]) is not None
    with pytest.raises(ArtifactInTextError, match=r"\{big.stdout\} is artifact [0-9a-f]{64}"):
        render({"content": "before {big.stdout} after"}, context)
    whole_json, _ = externalize({"rows": list(range(1000))}, INLINE)
    with pytest.raises(ArtifactInTextError, match="'rows' lies inside artifact"):
        render({"rows": "{big.rows}"}, RenderContext({}, {"big": whole_json}, {}, ("big",)))
