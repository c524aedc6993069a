"""The optimiser: search a mission's llm-step settings on training scenarios, prove the best on
held-out ones, and promote it only on evidence.

After DSPy's BootstrapFewShot (demonstrations from runs the metric accepts) and MIPROv2
(instruction and setting candidates searched against a validation set), with successive halving
to spend runs on the candidates that stay good. Every run goes through the real executor (a
`MissionRunner` the caller hands in), every trajectory is judged and the judgement recorded, and
the decision is two events: `PolicyEvaluated` with both held-out scores and the paired
bootstrap interval, then `PolicyPromoted` only when the gain clears the margin and the interval
is above zero.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rustchain.domain.policy.model import Policy
from rustchain.domain.runs.trajectory import Trajectory
from rustchain.domain.runs.tuned_bounds import PlanBounds
from rustchain.domain.runs.tuned_policy import Demonstration, Score, StepSettings, refusal_of
from rustchain.domain.training.paired_bootstrap import paired_interval, should_promote
from rustchain.domain.training.rule_judge import Judgement, judge_by_rules
from rustchain.domain.training.suite import Scenario, Suite
from rustchain.trainer.llm_judge import judge_group
from rustchain.trainer.trainer_events import TrainerEvents

Steps = dict[str, StepSettings]
Progress = Callable[[str], None]


class MissionRunner(Protocol):
    """Runs the suite's mission once through the executor with these llm-step settings (None:
    as the mission is written), recorded as policy `version`; returns its trajectory."""

    async def __call__(
        self, variables: Mapping[str, Any], steps: Steps | None, version: int
    ) -> Trajectory:
        """The finished mission's trajectory."""
        ...


@dataclass(frozen=True)
class Candidate:
    """Settings to try, and a short name for progress lines."""

    name: str
    steps: Steps


@dataclass(frozen=True)
class Run:
    """One judged run of one scenario."""

    scenario: str
    trajectory: Trajectory
    rule: Judgement
    reward: float


@dataclass
class Outcome:
    """What an optimisation found and decided."""

    mission: str
    baseline: Score
    candidate: Score
    interval: tuple[float, float]
    promoted: bool
    policy_version: int
    chosen: str
    missions_run: int
    runs: list[Run] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The `--json` form."""
        return {
            "baseline": self.baseline.model_dump(),
            "candidate": self.candidate.model_dump(),
            "promoted": self.promoted,
            "policy_version": self.policy_version,
            "interval": list(self.interval),
            "chosen": self.chosen,
            "missions_run": self.missions_run,
        }


class PolicyRefusedError(PermissionError):
    """Settings the tenant's verifier policy does not allow."""


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


class Optimiser:
    """One optimisation of one suite for one tenant."""

    def __init__(
        self,
        suite: Suite,
        mission: str,
        tenant: str,
        runner: MissionRunner,
        events: TrainerEvents,
        tenant_policy: Policy | None = None,
        llm_settings: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        seed: int = 0,
        concurrency: int = 4,
        bounds: PlanBounds | None = None,
    ) -> None:
        self.suite = suite
        self.mission = mission
        self.tenant = tenant
        self.runner = runner
        self.events = events
        self.tenant_policy = tenant_policy
        self.llm_settings = dict(llm_settings or {})
        self.progress = progress or (lambda _line: None)
        self.seed = seed
        # The mission's time and token bounds: attempts that break them are never tried.
        self.bounds = bounds
        self._gate = asyncio.Semaphore(concurrency)
        self.missions_run = 0
        self.runs: list[Run] = []
        # Which training scenario each demonstration came from: it is not shown to a run of
        # that same scenario, where it would be the answer itself.
        self._demonstrated: dict[str, str] = {}

    # Running and judging ------------------------------------------------------------------

    def _without_own_answer(self, scenario: Scenario, steps: Steps | None) -> Steps | None:
        if not steps or not self._demonstrated:
            return steps
        return {
            step_id: settings.model_copy(
                update={
                    "examples": [
                        e
                        for e in settings.examples
                        if self._demonstrated.get(e.prompt) != scenario.id
                    ]
                }
            )
            for step_id, settings in steps.items()
        }

    async def _run(self, scenario: Scenario, steps: Steps | None, version: int) -> Trajectory:
        steps = self._without_own_answer(scenario, steps)
        async with self._gate:
            trajectory = await self.runner(scenario.variables, steps, version)
        self.missions_run += 1
        return trajectory

    async def _group(
        self, scenario: Scenario, settings: Sequence[tuple[Steps | None, int]]
    ) -> list[Run]:
        """Run each settings on one scenario (runs_per_scenario times), judge them as a group."""
        repeat = self.suite.optimiser.runs_per_scenario
        jobs = [
            self._run(scenario, steps, version)
            for steps, version in settings
            for _ in range(repeat)
        ]
        trajectories = list(await asyncio.gather(*jobs))
        rules = [judge_by_rules(t, scenario, self.suite.judge) for t in trajectories]
        rewards = [rule.score for rule in rules]
        judged: list[tuple[Trajectory, Judgement]] = list(zip(trajectories, rules, strict=True))
        if self.suite.judge.model is not None:
            ruler = await judge_group(
                scenario,
                trajectories,
                rules,
                self.suite.judge,
                self.llm_settings,
                self.tenant,
                self.tenant_policy,
            )
            share = self.suite.judge.llm_share
            rewards = [
                (1 - share) * rule.score + share * llm.score
                for rule, llm in zip(rules, ruler, strict=True)
            ]
            judged += list(zip(trajectories, ruler, strict=True))
        await asyncio.to_thread(self._record, scenario, judged)
        runs = [
            Run(scenario.id, t, rule, reward)
            for t, rule, reward in zip(trajectories, rules, rewards, strict=True)
        ]
        self.runs.extend(runs)
        return runs

    def _record(self, scenario: Scenario, judged: list[tuple[Trajectory, Judgement]]) -> None:
        for trajectory, judgement in judged:
            self.events.judged(
                self.tenant, trajectory.mission_id, scenario.id, self.suite.name, judgement
            )

    async def _scores(
        self, scenarios: Sequence[Scenario], settings: Sequence[tuple[Steps | None, int]]
    ) -> list[dict[str, list[Run]]]:
        """Per settings, per scenario id: its judged runs."""
        groups = await asyncio.gather(*(self._group(s, settings) for s in scenarios))
        repeat = self.suite.optimiser.runs_per_scenario
        found: list[dict[str, list[Run]]] = [{} for _ in settings]
        for scenario, runs in zip(scenarios, groups, strict=True):
            for index in range(len(settings)):
                found[index][scenario.id] = runs[index * repeat : (index + 1) * repeat]
        return found

    # Candidates ---------------------------------------------------------------------------

    def _demonstrations(self, runs: Sequence[Run], step_id: str) -> list[Demonstration]:
        """Prompt and answer of the step from the best passing runs, one per scenario."""
        chosen: list[Demonstration] = []
        seen: set[str] = set()
        for run in sorted(runs, key=lambda r: (-r.reward, r.scenario)):
            if not run.rule.passed or run.scenario in seen:
                continue
            step = next((s for s in run.trajectory.steps if s.step_id == step_id), None)
            if step is None or not isinstance(step.inputs, dict) or step.output is None:
                continue
            prompt = step.inputs.get("prompt")
            if isinstance(prompt, str):
                seen.add(run.scenario)
                self._demonstrated[prompt] = run.scenario
                chosen.append(Demonstration(prompt=prompt, answer=str(step.output)))
        return chosen

    def candidates(self, baseline: Steps, runs: Sequence[Run]) -> list[Candidate]:
        """Candidate settings from the search space, sampled with the seed, the tenant's policy
        applied (a model it refuses is never tried)."""
        space = self.suite.search
        models: list[str | None] = [*space.models] or [None]
        temperatures: list[float | None] = [*space.temperatures] or [None]
        instructions: list[str | None] = [*space.instructions] or [None]
        budgets: list[int | None] = [*space.max_tokens] or [None]
        attempts: list[int | None] = [*space.max_attempts] or [None]
        options = itertools.product(
            models, temperatures, instructions, space.few_shot or [0], budgets, attempts
        )
        demos = {step: self._demonstrations(runs, step) for step in space.steps}
        found: list[Candidate] = []
        seen: list[Steps] = []
        for model, temperature, instruction, shots, tokens, tries in options:
            steps: Steps = {}
            for step in space.steps:
                base = baseline.get(step, StepSettings())
                steps[step] = StepSettings(
                    model=model if model is not None else base.model,
                    temperature=temperature if temperature is not None else base.temperature,
                    max_tokens=tokens if tokens is not None else base.max_tokens,
                    system=instruction if instruction is not None else base.system,
                    examples=demos[step][:shots] if shots else [],
                    max_attempts=tries if tries is not None else base.max_attempts,
                    backoff_seconds=base.backoff_seconds,
                )
            if self.tenant_policy is not None and any(
                refusal_of(s, self.tenant_policy, self.bounds, step) for step, s in steps.items()
            ):
                continue
            if steps in seen:
                # Few-shot asked where no run passed gives the same settings: run them once.
                continue
            seen.append(steps)
            which = space.instructions.index(instruction) + 1 if instruction is not None else 0
            name = f"model={model} temperature={temperature} instruction={which} few_shot={shots}"
            if tries is not None:
                name += f" max_attempts={tries}"
            found.append(Candidate(name, steps))
        rng = random.Random(self.seed)
        limit = self.suite.optimiser.candidates
        return found if len(found) <= limit else rng.sample(found, limit)

    async def _halve(self, candidates: list[Candidate], training: list[Scenario]) -> Candidate:
        """Successive halving: every candidate on a few scenarios, the better half on twice as
        many, until one is left (ties go to the earlier candidate)."""
        order = training[:]
        random.Random(self.seed + 1).shuffle(order)
        rounds = max(1, math.ceil(math.log2(len(candidates))))
        budget = max(1, math.ceil(len(order) / 2 ** (rounds - 1)))
        scores: dict[str, dict[str, float]] = {c.name: {} for c in candidates}
        alive = candidates
        while True:
            used = order[:budget]
            for scenario in used:
                todo = [c for c in alive if scenario.id not in scores[c.name]]
                if todo:
                    (per,) = [await self._scores([scenario], [(c.steps, 0) for c in todo])]
                    for candidate, runs in zip(todo, per, strict=True):
                        rewards = [r.reward for r in runs[scenario.id]]
                        scores[candidate.name][scenario.id] = _mean(rewards)

            def mean_of(candidate: Candidate, used: list[Scenario] = used) -> float:
                return _mean([scores[candidate.name][s.id] for s in used])

            ranked = sorted(alive, key=lambda c: -mean_of(c))
            self.progress(
                f"halving: {len(alive)} candidate(s) on {len(used)} scenario(s); "
                f"best {mean_of(ranked[0]):.3f} ({ranked[0].name})"
            )
            alive = ranked[: max(1, len(ranked) // 2)]
            if len(alive) == 1:
                return alive[0]
            budget = min(len(order), budget * 2)

    # The whole optimisation --------------------------------------------------------------

    async def optimise(self) -> Outcome:
        """Search, evaluate on held-out scenarios, and promote on evidence."""
        training, held = self.suite.split()
        current = self.events.policies(self.tenant, self.mission).promoted()
        baseline_steps: Steps = dict(current.steps) if current is not None else {}
        base_version = current.version if current is not None else 0
        self.progress(f"{len(training)} training and {len(held)} held-out scenario(s)")
        # The policy in force now is the baseline; its training runs give the demonstrations.
        first = await self._scores(training, [(baseline_steps or None, base_version)])
        baseline_runs = [r for runs in first[0].values() for r in runs]
        self.progress(
            f"baseline on training: {_mean([r.reward for r in baseline_runs]):.3f} "
            f"(policy version {current.version if current else 0})"
        )
        candidates = self.candidates(baseline_steps, baseline_runs)
        if not candidates:
            raise PolicyRefusedError(
                "the tenant's policy allows none of the suite's candidate settings"
            )
        best = await self._halve(candidates, training)
        self.progress(f"best on training: {best.name}")
        version = await asyncio.to_thread(
            self.events.proposed, self.tenant, self.mission, best.steps, best.name
        )
        base, cand = await self._scores(
            held, [(baseline_steps or None, base_version), (best.steps, version)]
        )
        base_means = [_mean([r.reward for r in base[s.id]]) for s in held]
        cand_means = [_mean([r.reward for r in cand[s.id]]) for s in held]
        settings = self.suite.optimiser
        interval = paired_interval(
            [c - b for b, c in zip(base_means, cand_means, strict=True)],
            settings.confidence,
            settings.resamples,
            self.seed,
        )
        promote = should_promote(base_means, cand_means, settings.margin, interval[0])
        baseline_score = _score(base, base_means)
        candidate_score = _score(cand, cand_means)
        await asyncio.to_thread(
            self.events.evaluated,
            self.tenant,
            self.mission,
            version,
            baseline_score,
            candidate_score,
            interval,
            promote,
        )
        if promote:
            await asyncio.to_thread(self.promote, version)
        self.progress(
            f"held-out: baseline {baseline_score.score:.3f}, "
            f"candidate {candidate_score.score:.3f}, "
            f"interval [{interval[0]:+.3f}, {interval[1]:+.3f}]: "
            + ("promoted" if promote else "not promoted")
        )
        return Outcome(
            self.mission,
            baseline_score,
            candidate_score,
            interval,
            promote,
            version,
            best.name,
            self.missions_run,
            self.runs,
        )

    def promote(self, version: int) -> None:
        """Promote a version, unless the tenant's policy refuses one of its settings."""
        found = self.events.policies(self.tenant, self.mission).versions.get(version)
        if found is None:
            raise KeyError(f"no version {version} of the policy for '{self.mission}'")
        check_allowed(found.steps, self.tenant_policy, self.bounds)
        self.events.promoted(self.tenant, self.mission, version)


def check_allowed(
    steps: Steps, tenant_policy: Policy | None, bounds: PlanBounds | None = None
) -> None:
    """PolicyRefusedError when the tenant's verifier policy refuses any step's settings (with
    the plan's bounds: also attempts that take the mission past its limits)."""
    if tenant_policy is None:
        return
    for step, settings in steps.items():
        refused = refusal_of(settings, tenant_policy, bounds, step)
        if refused is not None:
            raise PolicyRefusedError(
                f"step '{step}': [{refused.rule}] {refused.explanation} "
                f"(value: {refused.value!r}); the tenant's policy refuses it"
            )


def _score(runs: dict[str, list[Run]], means: Sequence[float]) -> Score:
    every = [r for found in runs.values() for r in found]
    return Score(
        score=round(_mean(means), 6),
        passed=sum(r.rule.passed for r in every),
        total=len(every),
    )
