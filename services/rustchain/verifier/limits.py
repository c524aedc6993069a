"""Mission-wide rules on known numbers: steps, parallelism, time and token budgets."""

from __future__ import annotations

from dataclasses import dataclass

from rustchain.domain.plans.plan import Plan
from rustchain.domain.policy.checks import BYTE_BOUNDS, byte_bound
from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.obligations import ByteUse, TokenUse
from rustchain.steps import process_start


@dataclass(frozen=True)
class Breach:
    """A bound a plan exceeds: the rule, the step if one is to blame, and the numbers."""

    rule: str
    step_id: str | None
    field: str | None
    explanation: str
    values: dict[str, str]
    undecided: bool = False
    """Known only at run time (a template): the plan is not proven, nor shown to breach."""


def effective_parallelism(plan: Plan) -> int:
    """The most steps the plan may run at once: its widest level, capped by its config."""
    widest = max((len(level) for level in plan.levels), default=0)
    configured = plan.config.max_parallel_steps
    return min(widest, configured) if configured is not None else widest


def mission_breaches(plan: Plan, policy: Policy) -> list[Breach]:
    """Every mission-wide bound of the policy the plan exceeds."""
    limits = policy.limits
    breaches: list[Breach] = []
    if len(plan.steps) > limits.max_steps:
        breaches.append(
            Breach(
                "mission.steps",
                None,
                None,
                f"has more than {limits.max_steps} steps",
                {"steps": str(len(plan.steps))},
            )
        )
    workspace = plan.config.workspace
    if workspace is not None and not policy.filesystem.allows_mission_workspace(workspace):
        breaches.append(
            Breach(
                "filesystem.mission_workspace",
                None,
                "config.workspace",
                "names its own workspace, which the policy does not allow",
                {"workspace": workspace},
            )
        )
    starts = [s.id for s in plan.steps if s.step_type == process_start.STEP_TYPE.name]
    cap = policy.commands.max_background_processes
    if len(starts) > cap:
        # Counting the steps bounds the programs running at once from above (each step starts
        # one); the executor counts the running ones again.
        breaches.append(
            Breach(
                "commands.background_processes",
                starts[cap],
                None,
                f"may run more than {cap} background processes at once "
                "(commands.max_background_processes)",
                {"process_start_steps": str(len(starts))},
            )
        )
    parallel = effective_parallelism(plan)
    if parallel > limits.max_parallel_steps:
        breaches.append(
            Breach(
                "mission.parallelism",
                None,
                "config.max_parallel_steps",
                f"may run more than {limits.max_parallel_steps} steps at once",
                {"parallel_steps": str(parallel)},
            )
        )
    if plan.critical_path_seconds > limits.max_mission_seconds:
        breaches.append(
            Breach(
                "mission.time",
                plan.critical_path[-1] if plan.critical_path else None,
                "timeout_seconds",
                f"may run longer than {limits.max_mission_seconds:g} s "
                "(the longest path of timeouts, retries and backoff)",
                {
                    "critical_path": " -> ".join(plan.critical_path),
                    "seconds": f"{plan.critical_path_seconds:g}",
                },
            )
        )
    return breaches


def token_breaches(plan: Plan, policy: Policy, uses: dict[str, list[TokenUse]]) -> list[Breach]:
    """Steps asking more tokens than a step may, and a mission asking more than its budget."""
    llm = policy.llm
    breaches: list[Breach] = []
    total = 0
    for step in plan.steps:
        for use in uses.get(step.id, []):
            if use.tokens is not None and use.tokens > llm.max_tokens_per_step:
                breaches.append(
                    Breach(
                        "llm.tokens",
                        step.id,
                        use.field,
                        f"asks for more than {llm.max_tokens_per_step} tokens",
                        {use.field: str(use.tokens)},
                    )
                )
            per_call = use.tokens if use.tokens is not None else llm.default_max_tokens
            total += per_call * use.calls * step.retry.max_attempts
    if total > llm.max_tokens_per_mission:
        breaches.append(
            Breach(
                "llm.budget",
                None,
                None,
                f"may spend more than {llm.max_tokens_per_mission} tokens "
                "(every LLM call, at its limit, on every attempt)",
                {"tokens": str(total)},
            )
        )
    return breaches


def byte_breach(step_id: str, use: ByteUse, policy: Policy) -> Breach | None:
    """A step asking to keep more bytes than the policy's bound (None: it asks for the bound)."""
    bound = byte_bound(policy, use.rule)
    line = BYTE_BOUNDS[use.rule]
    if use.size is None:
        return None
    if not isinstance(use.size, int) or isinstance(use.size, bool):
        return Breach(
            use.rule,
            step_id,
            use.field,
            f"sets {use.field} from a value known only at run time; the runtime refuses more"
            f" than {bound} bytes ({line})",
            {use.field: str(use.size)},
            undecided=True,
        )
    if use.size > bound:
        return Breach(
            use.rule,
            step_id,
            use.field,
            f"asks for more than {bound} bytes ({line})",
            {use.field: str(use.size)},
        )
    return None
