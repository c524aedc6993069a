"""The product's metrics, on the OpenTelemetry metrics API (no-op until a provider is set).

Names follow the OpenTelemetry conventions: dotted, unit apart, GenAI token usage as the
semantic conventions name it (`gen_ai.client.token.usage`)."""

from __future__ import annotations

from functools import cache

from opentelemetry import metrics

_METER = "rustchain"


class Instruments:
    """Every instrument the services record to."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.missions_started = meter.create_counter(
            "rustchain.missions.started", "{mission}", "Missions the executor accepted"
        )
        self.missions_finished = meter.create_counter(
            "rustchain.missions.finished", "{mission}", "Missions that ended, by outcome"
        )
        self.missions_running = meter.create_up_down_counter(
            "rustchain.missions.running", "{mission}", "Missions started and not finished"
        )
        self.steps_running = meter.create_up_down_counter(
            "rustchain.steps.running", "{step}", "Step attempts started and not finished"
        )
        self.step_duration = meter.create_histogram(
            "rustchain.step.duration", "s", "Duration of a step attempt, by step type and outcome"
        )
        self.relay_lag_events = meter.create_gauge(
            "rustchain.relay.lag.events", "{event}", "Events committed and not yet published"
        )
        self.relay_lag_seconds = meter.create_gauge(
            "rustchain.relay.lag.seconds", "s", "Age of the oldest event not yet published"
        )
        self.solver_duration = meter.create_histogram(
            "rustchain.verifier.solver.duration", "s", "Time the verifier spent proving a plan"
        )
        self.leases_lost = meter.create_counter(
            "rustchain.executor.leases.lost",
            "{lease}",
            "Missions an executor stopped driving because another replica holds their lease",
        )
        self.quota_refusals = meter.create_counter(
            "rustchain.quota.refusals", "{refusal}", "Requests refused for a tenant's quota"
        )
        self.sandbox_run_duration = meter.create_histogram(
            "rustchain.sandbox.run.duration",
            "s",
            "Wall time of a sandboxed program, confinement included, by mechanism",
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", "{token}", "Tokens used by llm steps, by model and type"
        )


@cache
def instruments() -> Instruments:
    """The instruments of this process (bound to whatever meter provider is set, even later)."""
    return Instruments(metrics.get_meter(_METER))
