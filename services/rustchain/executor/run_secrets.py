"""The secrets of one run while the executor drives it: read, digested, handed over, masked.

Values live only in this object (process memory): a StepStarted records the reference text and
each value's salted digest, the runner gets the values, and outputs and errors are masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_jsonable_python

from rustchain.domain.language.secret_refs import (
    SecretReader,
    UnknownSecretError,
    mask,
    secret_digest,
    secret_names,
    substitute,
)
from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_secret_flow
from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.obligations import ConstraintGenerator, Use
from rustchain.domain.runs.run_events import RunEvent, StepStarted
from rustchain.steps.support.runtime import StepRunError


@dataclass
class RunSecrets:
    """The secret values a run's steps use, keyed by the attempt they were read for."""

    reader: SecretReader
    tenant: str
    salt: str
    # Every value read for this run: each is masked in outputs and errors.
    masked: set[str] = field(default_factory=set)
    # The values each started attempt is handed, read when it was recorded (its digests').
    handed: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)
    # Why a secret could not be read (a store error), told to the step that uses it.
    errors: dict[str, str] = field(default_factory=dict)

    def read(self, names: list[str]) -> dict[str, str]:
        """The current values of the named secrets the tenant holds (a missing one is left out:
        the step that uses it fails, naming it)."""
        values: dict[str, str] = {}
        for name in names:
            self.errors.pop(name, None)
            try:
                value = self.reader.get(self.tenant, name)
            except (OSError, ValueError) as error:
                # The store's trouble is the step's failure, not the executor's: no traceback.
                reason = error.strerror if isinstance(error, OSError) else str(error)
                self.errors[name] = f"secret '{name}' could not be read: {reason}"
                continue
            if value is not None:
                values[name] = value
                self.masked.add(value)
        return values

    def seal(self, event: RunEvent) -> RunEvent:
        """A StepStarted with the salted digest of each secret value its runner will be given."""
        if not isinstance(event, StepStarted) or event.inputs is None:
            return event
        names = secret_names(event.inputs)
        if not names:
            return event
        values = self.read(names)
        self.handed[(event.step_id, event.attempt)] = values
        digests = {name: secret_digest(self.salt, name, value) for name, value in values.items()}
        return event.model_copy(update={"secret_digests": digests})

    def hand_over(self, started: StepStarted, inputs: dict[str, Any]) -> dict[str, Any]:
        """The inputs with their secret references replaced by the values sealed for the attempt;
        StepRunError naming a secret the tenant does not have."""
        values = self.handed.pop((started.step_id, started.attempt), {})
        try:
            handed: dict[str, Any] = substitute(inputs, values)
        except UnknownSecretError as error:
            raise StepRunError(self.errors.get(error.name, str(error))) from None
        return handed

    def output(self, output: Any) -> Any:
        """The output with every secret value masked (as the JSON it is recorded as)."""
        if not self.masked:
            return output
        return mask(to_jsonable_python(output), self.masked)

    def error(self, message: str) -> str:
        """The error message with every secret value masked."""
        masked: str = mask(message, self.masked)
        return masked


def check_secret_flows(
    policy: Policy, generator: ConstraintGenerator, step: PlannedStep, inputs: dict[str, Any]
) -> None:
    """Refuse a secret the step gives to a command line, a path or a URL its policy does not open
    to secrets: the verifier's `data_flow.secrets`, on the recorded inputs."""
    for use in generator(step.model_copy(update={"parameters": inputs})):
        if not isinstance(use, Use):
            continue
        for name in secret_names(use.text):
            refusal = check_secret_flow(policy, name, use.sink)
            if refusal is not None:
                raise StepRunError(f"[{refusal.rule}] parameter {use.field}: {refusal.explanation}")
