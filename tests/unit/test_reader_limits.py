"""Hostile input gets a clear error, never a traceback, a stack overflow or exhausted memory."""

from __future__ import annotations

from rustchain.domain.language.yaml_reader import ReadLimits
from rustchain.domain.plans.compiler import compile_mission
from tests.unit.compile_helpers import REGISTRY


def _messages(data: bytes, limits: ReadLimits | None = None) -> list[str]:
    compilation = compile_mission(data, "hostile.yaml", REGISTRY, limits)
    assert compilation.plan is None
    return [d.render() for d in compilation.errors]


def test_a_billion_laughs_is_refused_before_it_expands() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]

    errors = _messages("\n".join(lines).encode())

    assert len(errors) == 1
    assert "expands to more than 5,000,000 values" in errors[0]


def test_deep_nesting_is_refused_with_its_position() -> None:
    depth = 100_000

    errors = _messages(b"[" * depth + b"]" * depth)

    assert errors == [
        "hostile.yaml:1:101: error: nesting deeper than 100 levels; a mission needs far fewer"
    ]


def test_deep_json_nesting_is_refused() -> None:
    depth = 50_000

    errors = _messages(b"[" * depth + b"]" * depth)

    assert len(errors) == 1


def test_a_file_over_the_size_limit_is_refused_without_parsing() -> None:
    data = b"x" * (50 * 1024 * 1024)

    errors = _messages(data)

    assert errors == ["hostile.yaml:1:1: error: the file is 50 MiB; missions are limited to 32 MiB"]


def test_the_size_limit_is_a_setting() -> None:
    errors = _messages(b"name: x\n" * 100, ReadLimits(max_bytes=64))

    assert errors == [
        "hostile.yaml:1:1: error: the file is 800 bytes; missions are limited to 64 bytes"
    ]


def test_binary_junk_gets_a_utf8_error_with_its_position() -> None:
    errors = _messages(b"version: '1.0'\n\x89PNG\r\n\x1a\n")

    assert errors == [
        "hostile.yaml:2:1: error: expected UTF-8 text, found the byte 0x89 (is this a binary file?)"
    ]


def test_a_byte_order_mark_is_accepted() -> None:
    text = "\ufeffversion: '1.0'\nname: bom\nsteps:\n  - {id: a, name: A, step_type: noop}\n"

    compilation = compile_mission(text.encode("utf-8"), "bom.yaml", REGISTRY)

    assert compilation.plan is not None
