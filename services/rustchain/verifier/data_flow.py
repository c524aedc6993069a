"""Taint: which untrusted step types' output may be inside each step's output."""

from __future__ import annotations

from rustchain.domain.language.references import Reference, ReferenceKind, scan, strings_in
from rustchain.domain.plans.plan import Plan, PlannedStep
from rustchain.domain.policy.model import Policy


def referenced_steps(step: PlannedStep, step_ids: dict[str, PlannedStep], plan: Plan) -> set[str]:
    """The steps whose output a step's parameters use."""
    found: set[str] = set()
    for _, text in strings_in(step.parameters):
        for reference in scan(text, step_ids, plan.variables):
            if not isinstance(reference, Reference):
                continue
            if reference.kind is ReferenceKind.STEP:
                found.add(reference.name)
            elif reference.kind is ReferenceKind.PREVIOUS and step.depends_on:
                found.add(step.depends_on[0])
    return found


def taint(plan: Plan, policy: Policy) -> dict[str, frozenset[str]]:
    """For each step, the untrusted step types whose output may flow into its own output."""
    by_id = {step.id: step for step in plan.steps}
    untrusted = set(policy.data_flow.untrusted_step_types)
    result: dict[str, frozenset[str]] = {}
    for level in plan.levels:
        for step_id in level:
            step = by_id[step_id]
            sources = {step.step_type} & untrusted
            for upstream in referenced_steps(step, by_id, plan):
                sources |= result.get(upstream, frozenset())
            result[step_id] = frozenset(sources)
    return result
