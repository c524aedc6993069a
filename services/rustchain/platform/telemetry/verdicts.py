"""What a verdict adds to the verifier's span and metrics: solver time, rules, the outcome."""

from __future__ import annotations

from opentelemetry import trace

from rustchain.domain.plans.verdict import Verdict
from rustchain.platform.telemetry.instruments import instruments


def observe_verdict(verdict: Verdict, tenant: str) -> None:
    """Record the solver time by outcome and put the verdict on the current (VerifyPlan) span."""
    instruments().solver_duration.record(
        verdict.solver_seconds, {"verdict": verdict.status.value, "tenant": tenant}
    )
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attributes(
        {
            "rustchain.verdict": verdict.status.value,
            "rustchain.verifier.solver_seconds": verdict.solver_seconds,
            "rustchain.verifier.queries": verdict.queries,
            "rustchain.verifier.rules_proven": verdict.rules_proven,
            "rustchain.verifier.violations": [f.rule for f in verdict.violations],
            "rustchain.policy.name": verdict.policy_name,
        }
    )
