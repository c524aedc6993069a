"""From a parsed mission file to a validated Mission, reporting every problem in one pass."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from rustchain.domain.language import graph
from rustchain.domain.language.diagnostics import DiagnosticSink, Position
from rustchain.domain.language.implied_dependencies import ImpliedDependencies
from rustchain.domain.language.mission import Mission, MissionHeader, MissionStep
from rustchain.domain.language.model_errors import plain_scalars_as_text, validate_node
from rustchain.domain.language.reference_sites import (
    reference_position,
    references_in,
    unknown_message,
)
from rustchain.domain.language.references import (
    Reference,
    ReferenceKind,
    UnknownReference,
    may_hold_reference,
)
from rustchain.domain.language.secret_refs import SECRETS_NAMESPACE
from rustchain.domain.language.source import Node, NodeKind, SourceDocument, describe
from rustchain.domain.language.step_types import StepTypeRegistry, canonical_step_type
from rustchain.domain.language.suggest import closest, did_you_mean
from rustchain.domain.language.unknown_keys import report_unknown_keys


@dataclass
class _StepSkeleton:
    """What the graph checks need of a step, taken leniently so one bad field hides nothing."""

    index: int
    node: Node
    id: str | None
    id_node: Node | None
    depends_on: list[tuple[str, Node]]


def _skeleton(index: int, node: Node) -> _StepSkeleton:
    id_node = node.child("id")
    step_id = id_node.value if id_node is not None and isinstance(id_node.value, str) else None
    deps: list[tuple[str, Node]] = []
    deps_node = node.child("depends_on")
    if deps_node is not None and deps_node.kind is NodeKind.SEQUENCE:
        deps = [(d.value, d) for d in deps_node.items if isinstance(d.value, str)]
    return _StepSkeleton(index, node, step_id, id_node, deps)


class MissionLoader:
    """Validates one parsed mission file against a step-type registry."""

    def __init__(self, registry: StepTypeRegistry) -> None:
        self.registry = registry

    def load(self, document: SourceDocument, sink: DiagnosticSink) -> Mission | None:
        """The mission, or None when the sink holds at least one error."""
        root = document.root
        if root.kind is not NodeKind.MAPPING:
            sink.error(
                root.position,
                "expected a mission: a mapping with 'version', 'name' and 'steps', "
                f"found {describe(root.to_plain()) if root.kind is NodeKind.SCALAR else 'a list'}",
            )
            return None
        report_unknown_keys(root, MissionHeader, sink, "the mission", also_allowed=("steps",))
        header_data = {k: v.to_plain() for k, v in root.mapping.items() if k != "steps"}
        header = validate_node(MissionHeader, header_data, root, sink, "the mission")
        steps, skeletons = self._steps(root, sink)
        variables = self._variable_names(root)
        if SECRETS_NAMESPACE in variables:
            sink.error(
                variables[SECRETS_NAMESPACE],
                f"variable name '{SECRETS_NAMESPACE}' is reserved: {{secrets.NAME}} names a secret",
            )
        ids = self._check_ids(skeletons, variables, sink)
        deps = self._check_depends_on(skeletons, ids, sink)
        self._check_cycles(skeletons, ids, deps, sink)
        order = [s.id for s in skeletons if s.id is not None and ids.get(s.id) is s]
        implied = ImpliedDependencies(order, deps)
        self._check_step_references(document, skeletons, ids, implied, variables, sink)
        self._check_output_references(document, root, ids, variables, sink)
        if sink.has_errors or header is None:
            return None
        return Mission(**dict(header), steps=implied.apply(steps))

    def _steps(
        self, root: Node, sink: DiagnosticSink
    ) -> tuple[list[MissionStep], list[_StepSkeleton]]:
        steps_node = root.child("steps")
        if steps_node is None:
            sink.error(root.position, "missing key 'steps' in the mission (a list of steps)")
            return [], []
        if steps_node.kind is not NodeKind.SEQUENCE:
            sink.error(
                steps_node.position,
                f"'steps' expects a list of steps, found {describe(steps_node.to_plain())}",
            )
            return [], []
        if not steps_node.items:
            sink.error(steps_node.position, "'steps' is empty; a mission needs at least one step")
            return [], []
        steps: list[MissionStep] = []
        skeletons: list[_StepSkeleton] = []
        for index, node in enumerate(steps_node.items):
            if node.kind is not NodeKind.MAPPING:
                sink.error(
                    node.position,
                    f"expected a step (a mapping with 'id', 'name', 'step_type' and "
                    f"'parameters'), found {describe(node.to_plain())}",
                )
                continue
            skeletons.append(_skeleton(index, node))
            step = self._step(node, sink)
            if step is not None:
                steps.append(step)
        return steps, skeletons

    def _step(self, node: Node, sink: DiagnosticSink) -> MissionStep | None:
        report_unknown_keys(node, MissionStep, sink, "a step")
        plain = node.to_plain()
        step = validate_node(MissionStep, plain, node, sink, "a step")
        type_node = node.child("step_type")
        if type_node is None:
            return step
        written = type_node.value
        if type_node.kind is NodeKind.MAPPING:
            inner = type_node.child("type")
            type_node = inner if inner is not None else type_node
            written = type_node.value
        if not isinstance(written, str):
            return step
        name = canonical_step_type(written)
        step_type = self.registry.get(name)
        if step_type is None:
            refusal = self.registry.refused.get(name)
            if refusal is not None:
                sink.error(type_node.position, f"step type '{written}' is not supported: {refusal}")
            else:
                sink.error(
                    type_node.position,
                    f"unknown step type '{written}'"
                    + did_you_mean(name, self.registry.names)
                    + (
                        ""
                        if closest(name, self.registry.names)
                        else f" (known types: {', '.join(self.registry.names)})"
                    ),
                )
            return None
        params_node = node.child("parameters")
        if params_node is None:
            try:
                step_type.parameters.model_validate({})
            except ValidationError:
                needed = [
                    k for k, f in step_type.parameters.model_fields.items() if f.is_required()
                ]
                sink.error(
                    node.position,
                    f"missing key 'parameters' in a step (a '{name}' step needs "
                    + (", ".join(f"'{k}'" for k in needed) or "parameters")
                    + ")",
                )
                return None
            return step
        if params_node.kind is NodeKind.SCALAR and params_node.value is None:
            params_node = Node(NodeKind.MAPPING, params_node.position, {}, {}, {})
        if params_node.kind is not NodeKind.MAPPING:
            return None  # the step model already reported that parameters must be a mapping
        where = f"the parameters of a '{name}' step"
        report_unknown_keys(params_node, step_type.parameters, sink, where)
        written = params_node.to_plain()
        try:
            step_type.parameters.model_validate(written)
        except ValidationError as failure:
            params = plain_scalars_as_text(failure, params_node, written)
            self._check_parameters(step_type.parameters, params, params_node, sink, where)
            if step is not None and params is not written:
                step = step.model_copy(update={"parameters": params})
        return step

    @staticmethod
    def _check_parameters(
        model: type[BaseModel], params: object, node: Node, sink: DiagnosticSink, where: str
    ) -> None:
        """Parameters a step type cannot run with are warnings: the step fails when it runs.

        RustChain's loader never looks inside `parameters` (its runners read them when the step
        runs, and fail it then), and it loaded missions whose steps miss a parameter on purpose
        (to test `continue_on_error`); they load here too. `validate --strict` refuses them.
        Without references the parameters run exactly as written, so the failure is certain.
        """
        found = DiagnosticSink(sink.file)
        validate_node(model, params, node, found, where)
        if may_hold_reference(params):
            # A reference might render into a valid value, which the verifier then never saw:
            # a step whose parameters hold one must be valid as written.
            for diagnostic in found.sorted():
                sink.error(diagnostic.position, diagnostic.message)
            return
        for diagnostic in found.sorted():
            sink.warning(diagnostic.position, f"{diagnostic.message}: this step fails when it runs")

    @staticmethod
    def _variable_names(root: Node) -> dict[str, Position]:
        node = root.child("variables")
        if node is None or node.kind is not NodeKind.MAPPING:
            return {}
        return dict(node.key_positions)

    @staticmethod
    def _check_ids(
        skeletons: list[_StepSkeleton], variables: dict[str, Position], sink: DiagnosticSink
    ) -> dict[str, _StepSkeleton]:
        ids: dict[str, _StepSkeleton] = {}
        for skeleton in skeletons:
            if skeleton.id is None or skeleton.id_node is None:
                continue
            first = ids.get(skeleton.id)
            if first is not None and first.id_node is not None:
                where = first.id_node.position
                sink.error(
                    skeleton.id_node.position,
                    f"duplicate step id '{skeleton.id}' "
                    f"(first used at {where.line}:{where.column})",
                )
                continue
            ids[skeleton.id] = skeleton
            if skeleton.id == SECRETS_NAMESPACE:
                sink.error(
                    skeleton.id_node.position,
                    f"step id '{SECRETS_NAMESPACE}' is reserved: {{secrets.NAME}} names a secret",
                )
            if skeleton.id in variables:
                where = variables[skeleton.id]
                sink.error(
                    skeleton.id_node.position,
                    f"step id '{skeleton.id}' is also the name of a variable "
                    f"(declared at {where.line}:{where.column}); references to it would be "
                    "ambiguous",
                )
        return ids

    @staticmethod
    def _check_depends_on(
        skeletons: list[_StepSkeleton], ids: dict[str, _StepSkeleton], sink: DiagnosticSink
    ) -> dict[str, list[str]]:
        deps: dict[str, list[str]] = {}
        for skeleton in skeletons:
            if skeleton.id is None or ids.get(skeleton.id) is not skeleton:
                continue
            known: list[str] = []
            seen: set[str] = set()
            for dep, dep_node in skeleton.depends_on:
                if dep in seen:
                    sink.warning(dep_node.position, f"'{dep}' is listed twice in depends_on")
                    continue
                seen.add(dep)
                if dep == skeleton.id:
                    sink.error(dep_node.position, f"step '{dep}' depends on itself")
                elif dep not in ids:
                    sink.error(
                        dep_node.position,
                        f"step '{skeleton.id}' depends on '{dep}', which is not a step of this "
                        f"mission{did_you_mean(dep, ids)}",
                    )
                else:
                    known.append(dep)
            deps[skeleton.id] = known
        return deps

    @staticmethod
    def _check_cycles(
        skeletons: list[_StepSkeleton],
        ids: dict[str, _StepSkeleton],
        deps: dict[str, list[str]],
        sink: DiagnosticSink,
    ) -> None:
        order = [s.id for s in skeletons if s.id is not None and ids.get(s.id) is s]
        for cycle in graph.find_cycles(order, deps):
            if len(cycle) == 2:
                continue  # a step depending on itself was reported where it is written
            first, second = cycle[0], cycle[1]
            position = next(n.position for d, n in ids[first].depends_on if d == second)
            sink.error(
                position,
                "dependency cycle: " + " -> ".join(cycle) + " (each step depends on the next)",
            )

    def _check_step_references(
        self,
        document: SourceDocument,
        skeletons: list[_StepSkeleton],
        ids: dict[str, _StepSkeleton],
        implied: ImpliedDependencies,
        variables: dict[str, Position],
        sink: DiagnosticSink,
    ) -> None:
        for skeleton in skeletons:
            params = skeleton.node.child("parameters")
            if skeleton.id is None or params is None or ids.get(skeleton.id) is not skeleton:
                continue
            for node, found in references_in(params, ids, variables):
                position = reference_position(document, node, found)
                if isinstance(found, UnknownReference):
                    sink.error(position, unknown_message(found))
                    continue
                self._check_reference(skeleton.id, found, implied, position, sink)

    @staticmethod
    def _check_reference(
        step_id: str,
        found: Reference,
        implied: ImpliedDependencies,
        position: Position,
        sink: DiagnosticSink,
    ) -> None:
        if found.kind is ReferenceKind.PREVIOUS:
            implied.require_previous(step_id, found.text, position, sink)
            return
        if found.kind is not ReferenceKind.STEP:
            return
        if found.name == step_id:
            sink.error(position, f"step '{step_id}' uses its own result {found.text}")
            return
        implied.require(step_id, found.name, found.text, position, sink)

    @staticmethod
    def _check_output_references(
        document: SourceDocument,
        root: Node,
        ids: dict[str, _StepSkeleton],
        variables: dict[str, Position],
        sink: DiagnosticSink,
    ) -> None:
        outputs = root.child("outputs")
        if outputs is None:
            return
        for node, found in references_in(outputs, ids, variables):
            if isinstance(found, UnknownReference):
                sink.error(reference_position(document, node, found), unknown_message(found))
