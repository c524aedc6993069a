"""Values for references: typed variables from `--var`, and parameters rendered from results."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rustchain.domain.language.mission import VariableSpec, value_has_type
from rustchain.domain.language.references import Reference, ReferenceKind, scan
from rustchain.domain.language.suggest import did_you_mean
from rustchain.domain.plans.artifacts import ArtifactRef


class VariableBindingError(ValueError):
    """Variables given to a mission that do not fit its declarations; lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _convert(name: str, spec: VariableSpec, raw: Any) -> Any:
    if not isinstance(raw, str) or spec.type == "string":
        return raw
    try:
        if spec.type == "integer":
            return int(raw)
        if spec.type == "number":
            return float(raw)
    except ValueError:
        raise ValueError(f"variable '{name}' expects a {spec.type}, found {raw!r}") from None
    lowered = raw.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    raise ValueError(f"variable '{name}' expects true or false, found {raw!r}")


def bind_variables(specs: Mapping[str, VariableSpec], given: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values for every variable: given (text from `--var` is converted) or default."""
    problems: list[str] = []
    bound: dict[str, Any] = {}
    for name in given:
        if name not in specs:
            problems.append(f"the mission has no variable '{name}'{did_you_mean(name, specs)}")
    for name, spec in specs.items():
        if name not in given:
            if spec.required:
                problems.append(f"variable '{name}' is required (set it with --var {name}=...)")
            else:
                bound[name] = spec.default
            continue
        try:
            value = _convert(name, spec, given[name])
        except ValueError as error:
            problems.append(str(error))
            continue
        if not value_has_type(value, spec.type):
            problems.append(f"variable '{name}' expects a {spec.type}, found {value!r}")
        elif spec.enum is not None and value not in spec.enum:
            problems.append(f"variable '{name}' must be one of {spec.enum}, found {value!r}")
        elif spec.pattern is not None and not re.fullmatch(spec.pattern, str(value)):
            problems.append(f"variable '{name}' must match {spec.pattern}, found {value!r}")
        else:
            bound[name] = value
    if problems:
        raise VariableBindingError(problems)
    return bound


@dataclass(frozen=True)
class RenderContext:
    """What references resolve against while one step's parameters are rendered."""

    variables: Mapping[str, Any]
    outputs: Mapping[str, Any]
    aliases: Mapping[str, Mapping[str, str]]
    depends_on: tuple[str, ...] = ()


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class ArtifactInTextError(ValueError):
    """A reference to an artifact inside a text, or to a part of one: it is handed only whole."""


def _field(value: Any, path: str) -> Any:
    for part in path.split("."):
        ref = ArtifactRef.of_value(value)
        if ref is not None:
            raise ArtifactInTextError(
                f"'{path}' lies inside artifact {ref.sha256} ({ref.size:,} bytes, kept by"
                " reference): refer to the output whole, or write a smaller one"
            )
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(path)
    return value


def _resolve(found: Reference, context: RenderContext) -> Any:
    if found.kind is ReferenceKind.VARIABLE:
        return context.variables[found.name]
    name = found.name
    if found.kind is ReferenceKind.PREVIOUS:
        name = context.depends_on[0]
    output = context.outputs[name]
    if found.field in (None, "output"):
        return output
    assert found.field is not None
    head, _, rest = found.field.partition(".")
    alias = context.aliases.get(name, {}).get(head)
    path = alias + ("." + rest if rest else "") if alias else found.field
    return _field(output, path)


def render(value: Any, context: RenderContext) -> Any:
    """Parameters with references replaced; a text that is one whole reference keeps its type."""
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if not isinstance(value, str) or "{" not in value:
        return value
    # A secret reference stays as written: its value is substituted only for the runner.
    found = [
        r
        for r in scan(value, context.outputs, context.variables)
        if isinstance(r, Reference) and r.kind is not ReferenceKind.SECRET
    ]
    if not found:
        return value
    if len(found) == 1 and found[0].text == value:
        return _resolve(found[0], context)
    pieces: list[str] = []
    position = 0
    for reference in found:
        resolved = _resolve(reference, context)
        ref = ArtifactRef.of_value(resolved)
        if ref is not None:
            # Its bytes are not in the run's state; pasting the reference would be a silent lie.
            raise ArtifactInTextError(
                f"{reference.text} is artifact {ref.sha256} ({ref.size:,} bytes, kept by"
                " reference): it can be a parameter's whole value, not part of a text"
            )
        pieces += [value[position : reference.offset], _as_text(resolved)]
        position = reference.offset + len(reference.text)
    pieces.append(value[position:])
    return "".join(pieces)
