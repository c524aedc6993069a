"""Verify a plan against a policy: per step, per text, per rule and per data-flow edge."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rustchain.domain.language.mission import VariableSpec
from rustchain.domain.language.secret_refs import SECRETS_NAMESPACE
from rustchain.domain.plans.plan import Plan, PlannedStep
from rustchain.domain.plans.verdict import Finding, Verdict, VerdictStatus
from rustchain.domain.policy.languages import Rule
from rustchain.domain.policy.model import Policy, SinkCategory
from rustchain.domain.policy.network_hosts import canonical_url
from rustchain.domain.policy.obligations import (
    ByteUse,
    ConstraintGenerator,
    Symbol,
    TokenUse,
    Use,
    canonical_template,
    parse_template,
)
from rustchain.domain.policy.patterns import regex
from rustchain.domain.policy.regex import (
    ANYTHING,
    Lang,
    char_set,
    concat,
    literal,
    optional,
    plus,
    union,
)
from rustchain.domain.policy.rules import SINK_CATEGORY, CompiledPolicy, Sink, compile_policy
from rustchain.verifier.arguments import argument_rules
from rustchain.verifier.data_flow import taint
from rustchain.verifier.limits import Breach, byte_breach, mission_breaches, token_breaches
from rustchain.verifier.queries import Z3_LOCK, Outcome, OutcomeKind, QueryRunner, SymbolDomain
from rustchain.verifier.settings import VerifierSettings

__all__ = ["VerifierSettings", "variable_domain", "verify_plan"]

SECRETS_RULE = "data_flow.secrets"
SECRET_PREFIX = SECRETS_NAMESPACE + "."

MISSION_RULES = (
    *("mission.steps", "mission.parallelism", "mission.time", "llm.budget"),
    *("filesystem.mission_workspace", "commands.background_processes"),
)


def _rendered(value: object) -> str:
    # As references render a non-text value into a text (rustchain.domain.plans.bindings).
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


_DIGITS = plus(char_set("0123456789"))
_TYPE_LANGUAGES: dict[str, Lang] = {
    "integer": concat(optional(literal("-")), _DIGITS),
    "number": plus(char_set("0123456789+-.eEInfinityNa")),
    "boolean": union(literal("true"), literal("false")),
}


def variable_domain(spec: VariableSpec) -> SymbolDomain:
    """The texts a mission variable may render to: its enum, its pattern, or its type's."""
    if spec.enum is not None:
        values = tuple(dict.fromkeys(_rendered(v) for v in spec.enum))
        return SymbolDomain(union(*(literal(v) for v in values)), values)
    if spec.type in _TYPE_LANGUAGES:
        return SymbolDomain(_TYPE_LANGUAGES[spec.type])
    if spec.pattern is not None:
        return SymbolDomain(regex(spec.pattern)[0])
    return SymbolDomain(ANYTHING)


@dataclass
class _Run:
    plan: Plan
    policy: Policy
    compiled: CompiledPolicy
    runner: QueryRunner
    tainted: Mapping[str, frozenset[str]]
    step_ids: dict[str, PlannedStep]
    checked: set[str] = field(default_factory=set)
    violations: list[Finding] = field(default_factory=list)
    undecided: list[Finding] = field(default_factory=list)

    def finding(
        self,
        rule: str,
        step_id: str | None,
        field_name: str | None,
        explanation: str,
        values: dict[str, str] | None = None,
        value: str | None = None,
    ) -> Finding:
        where = self.plan.sources.get(step_id) if step_id else None
        return Finding(
            rule=rule,
            step_id=step_id,
            file=self.plan.source_file,
            line=where.line if where else 1,
            column=where.column if where else 1,
            field=field_name,
            explanation=explanation,
            counterexample=values or {},
            value=value,
        )

    def check_use(
        self,
        step: PlannedStep,
        use: Use,
        rules: tuple[Rule, ...] | None = None,
        context: Mapping[str, str] | None = None,
        flows: bool = True,
    ) -> bool:
        """Check one use (with `rules` instead of its sink's, when given); True on a breach.

        `context`: values of other symbols the rules were chosen for (a command's program).
        """
        template = parse_template(use.text, step, self.plan, self.step_ids)
        judged = [template]
        if use.sink is Sink.URL:
            # As the runtime check does: a known numeric host is judged as the address it names
            # first, then as written (where `network.numeric_host` refuses the spelling).
            canonical = canonical_template(template)
            if canonical != template:
                judged.insert(0, canonical)
        example: dict[str, str] = {}
        if rules is None:
            rules = self.compiled.rules(use.sink)
        self.checked.update(rule.id for rule in rules)
        breach = None
        for candidate in judged:
            breach = breach or self.runner.first_breach(candidate, rules)
        if breach is not None and use.sink is Sink.URL:
            breach = _as_the_runtime_reports(breach, rules)
        if breach is not None:
            rule, outcome = breach
            if outcome.kind is OutcomeKind.VIOLATED:
                values = {**(context or {}), **outcome.values} or {use.field: outcome.value or ""}
                finding = self.finding(
                    rule.id, step.id, use.field, rule.explanation, values, outcome.value
                )
                self.violations.append(finding)
                example = outcome.values
            else:
                reason = f"could not be decided in {self.runner.timeout_ms} ms ({outcome.reason})"
                self.undecided.append(self.finding(rule.id, step.id, use.field, reason))
        category = SINK_CATEGORY[use.sink]
        if category is None or not flows:
            return breach is not None
        self.check_secrets(step, use, template.symbols, category)
        self.checked.add("data_flow.untrusted")
        for symbol in template.symbols:
            if symbol.source_step is None:
                continue
            for source in sorted(self.tainted.get(symbol.source_step, frozenset())):
                if self.policy.data_flow.allows(source, category):
                    continue
                example_value = example.get(symbol.name, "untrusted text")
                explanation = (
                    f"receives output of '{symbol.source_step}', which carries output of an "
                    f"untrusted '{source}' step; it may not reach a {category}"
                )
                self.violations.append(
                    self.finding(
                        "data_flow.untrusted",
                        step.id,
                        use.field,
                        explanation,
                        {symbol.name: example_value},
                    )
                )
        return breach is not None

    def check_secrets(
        self, step: PlannedStep, use: Use, symbols: list[Symbol], category: SinkCategory
    ) -> None:
        """A secret is opaque: it may reach a command, a path or a URL only if the policy says."""
        self.checked.add(SECRETS_RULE)
        if category in self.policy.data_flow.secrets_to:
            return
        for symbol in symbols:
            if not symbol.name.startswith(SECRET_PREFIX):
                continue
            name = symbol.name.removeprefix(SECRET_PREFIX)
            explanation = (
                f"receives the secret '{name}', which may not reach a {category}"
                f" (a secret may go to http headers or body, llm or tool settings, or a command's"
                f" env; data_flow.secrets_to lists what else the policy allows)"
            )
            self.violations.append(
                self.finding(SECRETS_RULE, step.id, use.field, explanation, {symbol.name: "***"})
            )

    def check_arguments(self, step: PlannedStep, uses: list[Use]) -> None:
        """A command's arguments, each by its program's model and the words around it."""
        if step.parameters.get("shell"):
            for use in uses:
                self.check_use(step, use)
            return
        line = parse_template(uses[0].command or "", step, self.plan, self.step_ids)
        templates = [parse_template(u.text, step, self.plan, self.step_ids) for u in uses]
        candidates = argument_rules(self.compiled.commands, self.runner, line, templates)
        for index, use in enumerate(uses):
            for number, (values, rules) in enumerate(candidates):
                if self.check_use(step, use, rules[index], values, flows=number == 0):
                    break

    def add_breach(self, breach: Breach) -> None:
        self.violations.append(
            self.finding(
                breach.rule, breach.step_id, breach.field, breach.explanation, breach.values
            )
        )


def _as_the_runtime_reports(
    breach: tuple[Rule, Outcome], rules: Sequence[Rule]
) -> tuple[Rule, Outcome]:
    """A URL counterexample whose host is a numeric spelling, reported as the runtime check
    reports it: by the first rule the address it names breaks, if any."""
    outcome = breach[1]
    if outcome.kind is not OutcomeKind.VIOLATED or outcome.value is None:
        return breach
    canonical = canonical_url(outcome.value)
    if canonical == outcome.value:
        return breach
    for candidate in rules:
        if candidate.language.matches(canonical):
            return candidate, Outcome(OutcomeKind.VIOLATED, outcome.values, canonical)
    return breach


def _order(finding: Finding) -> tuple[int, int, str]:
    return (finding.line, finding.column, finding.rule)


def verify_plan(
    plan: Plan,
    policy: Policy,
    generators: Mapping[str, ConstraintGenerator],
    settings: VerifierSettings | None = None,
) -> Verdict:
    """SAFE only if every rule is proven for every value the mission's inputs may take."""
    # The whole verification under the lock, not only each query: the Z3 terms cached for it
    # are freed when it ends, and a free racing another thread's query crashes the process.
    with Z3_LOCK:
        return _verify_plan(plan, policy, generators, settings)


def _verify_plan(
    plan: Plan,
    policy: Policy,
    generators: Mapping[str, ConstraintGenerator],
    settings: VerifierSettings | None,
) -> Verdict:
    settings = settings or VerifierSettings()
    domains = {name: variable_domain(spec) for name, spec in plan.variables.items()}
    run = _Run(
        plan=plan,
        policy=policy,
        compiled=compile_policy(policy),
        runner=QueryRunner(domains, settings.timeout_ms),
        tainted=taint(plan, policy),
        step_ids={step.id: step for step in plan.steps},
    )
    tokens: dict[str, list[TokenUse]] = {}
    for step in plan.steps:
        generator = generators.get(step.step_type)
        if generator is None:
            run.checked.add("verifier.coverage")
            explanation = f"has no constraint generator for step type '{step.step_type}'"
            run.undecided.append(run.finding("verifier.coverage", step.id, None, explanation))
            continue
        try:
            obligations = list(generator(step))
        except (TypeError, AttributeError, ValueError) as error:
            # Generators read validated parameters; a step RustChain would load with parameters
            # of the wrong type (a warning, the step fails when it runs) is not proven either.
            run.checked.add("verifier.coverage")
            explanation = f"has parameters of the wrong type, which it cannot run with ({error})"
            run.undecided.append(run.finding("verifier.coverage", step.id, None, explanation))
            continue
        arguments: list[Use] = []
        for obligation in obligations:
            if isinstance(obligation, TokenUse):
                run.checked.add("llm.tokens")
                tokens.setdefault(step.id, []).append(obligation)
            elif isinstance(obligation, ByteUse):
                run.checked.add(obligation.rule)
                breach = byte_breach(step.id, obligation, policy)
                if breach is not None and breach.undecided:
                    run.undecided.append(
                        run.finding(breach.rule, step.id, breach.field, breach.explanation)
                    )
                elif breach is not None:
                    run.add_breach(breach)
            elif obligation.command is not None:
                arguments.append(obligation)
            else:
                run.check_use(step, obligation)
        if arguments:
            run.check_arguments(step, arguments)
    run.checked.update(MISSION_RULES)
    for breach in [*mission_breaches(plan, policy), *token_breaches(plan, policy, tokens)]:
        run.add_breach(breach)
    failed = {f.rule for f in [*run.violations, *run.undecided]}
    status = VerdictStatus.SAFE
    if run.violations:
        status = VerdictStatus.VIOLATION
    elif run.undecided:
        status = VerdictStatus.UNKNOWN
    return Verdict(
        status=status,
        file=plan.source_file,
        mission_name=plan.mission_name,
        plan_hash=plan.content_hash,
        policy_name=policy.name,
        policy_hash=run.compiled.hash,
        rules_proven=sorted(run.checked - failed),
        queries=run.runner.queries,
        solver_seconds=run.runner.solver_seconds,
        violations=sorted(run.violations, key=_order),
        undecided=sorted(run.undecided, key=_order),
    )
