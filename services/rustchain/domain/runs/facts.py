"""Every fact the services record, read through one family: what auditors and projections use.

A history mixes the executor's run facts and the verifier's verdicts; `FACTS` reads any of them
as its current, typed version. To add an event, add its model to its service's family (see
docs/events.md, "Adding an event, or a new version of one").
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from rustchain.domain.events.fact_family import FactFamily, family_of
from rustchain.domain.events.verification_events import VERIFICATION_FACTS, PlanVerified
from rustchain.domain.runs.run_events import RUN_FACTS, RunEvent

Fact = Annotated[RunEvent | PlanVerified, Field(discriminator="type")]
"""Any fact a service records."""

FACTS: FactFamily[Fact] = family_of(Fact, RUN_FACTS, VERIFICATION_FACTS)
"""Every recorded fact of every service, with every family's upcasters."""

__all__ = ["FACTS", "Fact"]
