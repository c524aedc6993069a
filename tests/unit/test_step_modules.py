"""The registry's name → module table says what the step modules themselves define."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel

import rustchain.steps
from rustchain.steps import STEP_MODULES, constraint_generators, default_registry
from rustchain.steps.noop import NoopParameters
from rustchain.steps.support.definition import StepDefinition
from rustchain.steps.support.lazy_modules import LazyModuleAttributes


def _modules_defining_a_step_type() -> dict[str, str]:
    """Every module directly under rustchain.steps that exports STEP_TYPE, by its type's name."""
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(rustchain.steps.__path__, "rustchain.steps."):
        module = importlib.import_module(info.name)
        step_type = getattr(module, "STEP_TYPE", None)
        if step_type is not None:
            assert step_type.name not in found, f"{step_type.name} is defined twice"
            found[step_type.name] = info.name
    return found


def test_the_table_names_every_step_module_under_the_name_it_defines() -> None:
    assert _modules_defining_a_step_type() == STEP_MODULES


@pytest.mark.parametrize("name", sorted(STEP_MODULES))
def test_each_table_entry_gives_a_step_definition_and_a_constraint_generator(name: str) -> None:
    module = importlib.import_module(STEP_MODULES[name])

    assert isinstance(module.STEP_TYPE, StepDefinition)
    assert callable(module.CONSTRAINTS)
    assert default_registry(include_plugins=False).get(name) is module.STEP_TYPE
    assert constraint_generators()[name] is module.CONSTRAINTS


def test_the_registry_lists_names_without_importing_and_refuses_unknown_ones() -> None:
    registry = default_registry(include_plugins=False)

    assert registry.names == sorted(STEP_MODULES)
    assert registry.refused == {}
    assert registry.get("no_such_step") is None
    assert "no_such_step" not in registry.types


def test_a_lazy_table_imports_a_module_only_when_its_name_is_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lazy_table_probe.py").write_text("VALUE = 'loaded'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_table_probe", raising=False)
    table = LazyModuleAttributes[str](
        {"probe": "lazy_table_probe", "missing": "no_such_module_here"}, "VALUE"
    )

    assert sorted(table) == ["missing", "probe"]
    assert "probe" in table and "absent" not in table and len(table) == 2
    assert "lazy_table_probe" not in sys.modules
    assert table["probe"] == "loaded"
    assert "lazy_table_probe" in sys.modules
    assert table.get("absent") is None
    with pytest.raises(ModuleNotFoundError):
        table["missing"]


class _FakeEntryPoint:
    def __init__(self, step_type: object) -> None:
        self.step_type = step_type

    def load(self) -> object:
        return self.step_type


@dataclass(frozen=True)
class WordCount:
    """A plug-in step type as a package would export it, with a constraint generator."""

    name: str = "word_count"
    summary: str = "Count words"
    parameters: type[BaseModel] = NoopParameters

    def constraints(self, step: object) -> list[object]:
        return []


def test_a_plug_in_is_looked_up_beside_the_built_ins_and_may_not_reuse_a_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plug_in = WordCount()
    plug_ins = [_FakeEntryPoint(plug_in)]
    monkeypatch.setattr(rustchain.steps, "entry_points", lambda group: plug_ins)

    registry = default_registry()
    assert registry.get("word_count") is plug_in
    assert "word_count" in registry.names and "noop" in registry.names
    assert constraint_generators()["word_count"] == plug_in.constraints

    plug_ins.append(_FakeEntryPoint(WordCount(name="noop")))
    with pytest.raises(ValueError, match="step type 'noop' is registered twice"):
        default_registry()
