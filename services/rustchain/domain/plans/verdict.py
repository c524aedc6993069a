"""The verifier's verdict on a plan under a policy: what an auditor keeps as evidence."""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class VerdictStatus(StrEnum):
    """SAFE only when every rule was proven; UNKNOWN (undecided) is a refusal too."""

    SAFE = "safe"
    VIOLATION = "violation"
    UNKNOWN = "unknown"


class Finding(BaseModel):
    """A rule a step breaks (or that could not be decided), where, and an example of how."""

    model_config = ConfigDict(frozen=True)
    rule: str
    step_id: str | None
    file: str
    line: int
    column: int
    field: str | None
    explanation: str
    counterexample: dict[str, str] = Field(default_factory=dict)
    value: str | None = None

    def render(self, undecided: bool = False) -> str:
        """`FILE:LINE:COL: error: [rule] explanation (counterexample: dir="../../etc")`."""
        where = f"step '{self.step_id}'" if self.step_id else "the mission"
        subject = f"{where}: {self.field}" if self.field else where
        kind = "error: undecided:" if undecided else "error:"
        text = f"{self.file}:{self.line}:{self.column}: {kind} [{self.rule}] {subject} "
        text += self.explanation
        if self.counterexample:
            shown = ", ".join(
                f"{name}={json.dumps(value, ensure_ascii=False)}"
                for name, value in self.counterexample.items()
            )
            text += f" (counterexample: {shown})"
        return text


class Verdict(BaseModel):
    """The outcome of verifying one plan against one policy, with both their hashes."""

    model_config = ConfigDict(frozen=True)
    status: VerdictStatus
    file: str
    mission_name: str
    plan_hash: str
    policy_name: str
    policy_hash: str
    rules_proven: list[str]
    queries: int
    solver_seconds: float
    violations: list[Finding] = Field(default_factory=list)
    undecided: list[Finding] = Field(default_factory=list)

    @property
    def safe(self) -> bool:
        """True only for SAFE: a mission may run only then."""
        return self.status is VerdictStatus.SAFE

    def render(self) -> list[str]:
        """The lines `rustchain verify` prints: findings compiler-style, then a summary."""
        lines = [f.render() for f in self.violations]
        lines += [f.render(undecided=True) for f in self.undecided]
        if self.safe:
            lines.append(
                f"{self.file}: safe under policy '{self.policy_name}' "
                f"({len(self.rules_proven)} rules proven, {self.queries} solver queries, "
                f"{self.solver_seconds * 1000:.1f} ms)"
            )
        else:
            lines.append(
                f"{self.file}: {self.status.value} under policy '{self.policy_name}' "
                f"({len(self.violations)} violation(s), {len(self.undecided)} undecided)"
            )
        return lines

    def to_json(self) -> str:
        """Stable JSON, as stored with the verdict event."""
        return json.dumps(
            self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False
        )
