"""Presentation helpers shared by every report format.

These functions only *format* what is in a :class:`~rtcheck.result.Result`; they never
compute a dose metric. Numbers are shown with enough decimals that a value never looks
equal to a limit it differs from (23.004 Gy against ``< 23 Gy`` prints as ``23.004 Gy``).
Limits are printed as given when short (``23``, ``19.5``); a longer one (an interpolated
``4.615696127272727``) to its value's precision, with the same guarantee (:func:`limit_number`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from rtcheck.errors import Finding, Severity
from rtcheck.result import (
    ConstraintResult,
    LesionResult,
    Limit,
    PlanInfo,
    PlanMaximum,
    Result,
    Status,
    Verdict,
)

#: Status -> (symbol, word). Symbols and words make the status readable without colour.
STATUS_LABELS: dict[Status, tuple[str, str]] = {
    Status.PASS: ("✔", "PASS"),
    Status.FAIL: ("✖", "FAIL"),
    Status.NOT_EVALUATED: ("?", "NOT EVALUATED"),
}

VERDICT_LABELS: dict[Verdict, tuple[str, str]] = {
    Verdict.PASS: ("✔", "PASS"),
    Verdict.FAIL: ("✖", "FAIL"),
    Verdict.INCOMPLETE: ("?", "INCOMPLETE"),
}

#: One sentence per verdict. A PASS with constraints not evaluated (organs not contoured,
#: which do not block a pass) must not claim everything was evaluated: use
#: :func:`verdict_sentence`, which says how many were not evaluated.
VERDICT_SENTENCES: dict[Verdict, str] = {
    Verdict.PASS: "No constraint failed and every required constraint was evaluated.",
    Verdict.FAIL: "At least one constraint is not met.",
    Verdict.INCOMPLETE: (
        "No constraint failed, but not everything could be evaluated: "
        "this plan is not cleared by rtcheck."
    ),
}


def verdict_sentence(result: Result) -> str:
    """The verdict's sentence for ``result``, stating what a PASS did not evaluate.

    A PASS where every constraint was evaluated says so; otherwise it says how many were not
    evaluated and why (in a PASS these can only be organs that are not contoured and not
    required), e.g. "No constraint failed and every required constraint was evaluated;
    58 constraints were not evaluated (organs not contoured)."
    """
    if result.verdict is not Verdict.PASS:
        return VERDICT_SENTENCES[result.verdict]
    skipped = not_evaluated(result)
    if not skipped:
        return "Every constraint was evaluated and met."
    n = len(skipped)
    absent = sum(is_not_contoured(c) for c in skipped)
    if absent == n:
        why = "organs not contoured"
    elif absent:
        why = (
            f"{absent} for organs not contoured, {n - absent} for other reasons given in the report"
        )
    else:
        why = "reasons given in the report"
    were = "constraint was" if n == 1 else "constraints were"
    return f"{VERDICT_SENTENCES[Verdict.PASS][:-1]}; {n} {were} not evaluated ({why})."


SEVERITY_LABELS: dict[Severity, tuple[str, str]] = {
    Severity.INFO: ("i", "INFO"),
    Severity.WARNING: ("!", "WARNING"),
    Severity.ERROR: ("✖", "ERROR"),
}

#: Default decimals per unit.
_DECIMALS = {"Gy": 2, "cc": 2, "%": 1, "ratio": 2}
_MAX_DECIMALS = 6


def _decimals(value: float, unit: str, refs: Iterable[float] = ()) -> int:
    dp = _DECIMALS.get(unit, 3)
    if unit == "cc" and 0 < abs(value) < 0.1:
        dp = 3
    for ref in refs:
        while dp < _MAX_DECIMALS and value != ref and round(value, dp) == round(ref, dp):
            dp += 1
    return dp


def fmt_number(value: float | None, unit: str = "", refs: Iterable[float] = ()) -> str:
    """A value without its unit, e.g. ``23.10``; ``—`` when None; ``nan``/``inf`` kept.

    When even 6 decimals cannot tell ``value`` from a reference (23.0000004 against 23), the
    value is written in full (``repr``) rather than as ``23.000000``, which would read as equal
    to a ``<= 23`` limit it exceeds.
    """
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    refs = list(refs)
    dp = _decimals(value, unit, refs)
    if any(value != ref and round(value, dp) == round(ref, dp) for ref in refs):
        return repr(float(value))
    return f"{value:.{dp}f}"


def exact_number(value: float) -> str:
    """A limit or prescription as given: ``23``, ``19.5``; never rounded (``:g`` keeps only 6
    significant digits, so 23.0000005 would print as ``23``)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def unit_suffix(unit: str) -> str:
    """`` Gy``, ``%``, ``""`` for ratios."""
    if unit in ("", "ratio"):
        return ""
    if unit == "%":
        return "%"
    return f" {unit}"


def _given_decimals(text: str) -> int:
    """Decimals of a number as :func:`exact_number` writes it (``19.5`` -> 1, ``1e-05`` -> 5)."""
    exponent = Decimal(text).as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def _clashes(x: float, others: Iterable[float], dp: int) -> bool:
    """``x`` differs from one of ``others`` but prints equal to it at ``dp`` decimals."""
    return any(o != x and round(o, dp) == round(x, dp) for o in others)


def _shared_decimals(value: float | None, unit: str, limits: list[float]) -> int:
    """Decimals for a constraint's value and limits: the unit's (3 for a value under 0.1 cc),
    raised until every two of them that differ print differently; at most 6."""
    numbers = list(limits)
    if value is not None and math.isfinite(value):
        dp = _decimals(value, unit)
        numbers.append(value)
    else:
        dp = _DECIMALS.get(unit, 3)
    while dp < _MAX_DECIMALS and any(_clashes(x, numbers, dp) for x in numbers):
        dp += 1
    return dp


def _limit_text(limit: float, dp: int) -> str:
    """``limit`` as given when it has at most ``dp`` decimals, else rounded to ``dp`` decimals
    but to no fewer than 3 significant digits (a limit of 0.0456 % is not ``0.0``)."""
    exact = exact_number(limit)
    if limit != 0:
        dp = max(dp, 2 - math.floor(math.log10(abs(limit))))
    return exact if _given_decimals(exact) <= dp else f"{limit:.{dp}f}"


def fmt_value(value: float | None, unit: str, limits: Iterable[Limit] = ()) -> str:
    """A value with its unit, distinguishable from every limit.

    Printed with the decimals its limits are printed with (:func:`limit_number`); a value
    equal to a limit prints as that limit does (4.6157 against ``< 4.62`` reads ``4.62``, not
    ``4.6``); in full when 6 decimals cannot tell it from a limit it differs from.
    """
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    refs = [lim.value for lim in limits if math.isfinite(lim.value)]
    dp = _shared_decimals(value, unit, refs)
    if _clashes(value, refs, dp):
        return repr(float(value)) + unit_suffix(unit)
    for ref in refs:
        if ref == value:
            dp = max(dp, _given_decimals(_limit_text(ref, dp)))
    return f"{value:.{dp}f}{unit_suffix(unit)}"


def limit_number(limit: Limit, judged: ConstraintResult | None = None) -> str:
    """A limit's number: as given when short (``23``, ``19.5``), else at the value's decimals.

    Without ``judged`` the limit is written exactly (:func:`exact_number`). With it (the
    constraint the limit belongs to) a limit with more decimals than the value is rounded
    (``4.615696127272727`` -> ``4.62`` next to a value of ``4.82``): value and limits share the
    decimals of :func:`_shared_decimals`, raised until no two of them that differ print equal,
    and the limit is written exactly when 6 decimals are not enough (23.0000005 against
    23.0000004). Rounding is monotonic, so a failing value never reads as meeting its limit.
    """
    if judged is None or not math.isfinite(limit.value):
        return exact_number(limit.value)
    refs = [lim.value for lim in judged.limits if math.isfinite(lim.value)] + [limit.value]
    dp = _shared_decimals(judged.value, judged.unit, refs)
    value = judged.value
    others = refs + ([value] if value is not None and math.isfinite(value) else [])
    if _clashes(limit.value, others, dp):
        return exact_number(limit.value)
    return _limit_text(limit.value, dp)


def fmt_limit(limit: Limit, judged: ConstraintResult | None = None) -> str:
    """``< 23 Gy``, ``>= 95%``, ``< 1.2``; ``< 4.62`` for 4.6157 when ``judged`` is given.

    Pass the constraint the limit belongs to so that the limit is printed to the precision
    of its value (see :func:`limit_number`); without it the limit is printed exactly.
    """
    return f"{limit.comparator} {limit_number(limit, judged)}{unit_suffix(limit.unit)}"


def fmt_margin(c: ConstraintResult) -> str:
    """Signed margin to the most lenient limit, positive on the passing side."""
    if c.margin is None:
        return "—"
    refs = [0.0]
    text = fmt_number(c.margin, c.unit, refs)
    sign = "+" if c.margin > 0 else ""
    return f"{sign}{text}{unit_suffix(c.unit)}"


def limit_for(c: ConstraintResult, level: str) -> Limit | None:
    """The limit of ``c`` at ``level``, if it has one."""
    for lim in c.limits:
        if lim.level == level:
            return lim
    return None


def levels_used(result: Result, constraints: Iterable[ConstraintResult]) -> list[str]:
    """Level names used by ``constraints``: protocol order first, then first appearance."""
    seen: list[str] = []
    for c in constraints:
        for lim in c.limits:
            if lim.level not in seen:
                seen.append(lim.level)
    order = {name: i for i, name in enumerate(result.protocol.levels)}
    return sorted(seen, key=lambda n: (order.get(n, len(order)), seen.index(n)))


def structure_text(c: ConstraintResult) -> str:
    """``SpinalCord → ROI "cord" (synonym)`` style one-liner."""
    if c.matched_roi is None:
        how = f" ({c.match})" if c.match else ""
        return f"{c.structure} → no ROI{how}"
    if c.matched_roi == c.structure and c.match in (None, "exact"):
        return c.structure
    how = f" ({c.match})" if c.match else ""
    return f"{c.structure} → {c.matched_roi}{how}"


def note_text(c: ConstraintResult) -> str:
    """Reason and note joined, for the note column."""
    parts = [p for p in (c.reason, c.note) if p]
    return " · ".join(parts)


def metric_text(c: ConstraintResult) -> str:
    """Metric, with the dose basis when it is not physical dose."""
    if c.dose_basis and c.dose_basis != "physical":
        return f"{c.metric} [{c.dose_basis}]"
    return c.metric


def fmt_gy(value: float | None) -> str:
    """``50 Gy`` / ``unknown``."""
    return "unknown" if value is None else f"{exact_number(value)} Gy"


@dataclass(frozen=True)
class FindingRow:
    """A finding with the place it was attached to (``plan`` or a lesion name)."""

    finding: Finding
    where: str


def all_findings(result: Result) -> list[FindingRow]:
    """Every finding, plan-level first, then each lesion's; errors before warnings."""
    rows = [FindingRow(f, "plan") for f in result.findings]
    for lesion in result.lesions:
        rows.extend(FindingRow(f, lesion.name) for f in lesion.findings)
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(rows, key=lambda r: rank.get(r.finding.severity, 3))


def is_not_contoured(c: ConstraintResult) -> bool:
    """Not evaluated only because an organ nobody requires is absent from the plan."""
    return c.status is Status.NOT_EVALUATED and (c.reason or "").startswith("not contoured")


def fmt_limits(limits: Iterable[Limit], judged: ConstraintResult | None = None) -> str:
    """``< 23 Gy`` for a single unnamed level, ``none < 8 Gy, minor < 10 Gy`` otherwise.

    ``judged`` (the constraint of ``limits``) prints them to its value's precision.
    """
    limits = tuple(limits)
    if len(limits) == 1 and limits[0].level in ("limit", ""):
        return fmt_limit(limits[0], judged)
    return ", ".join(f"{lim.level} {fmt_limit(lim, judged)}" for lim in limits)


def not_evaluated(result: Result) -> list[ConstraintResult]:
    """Constraints (lesions' included) that could not be evaluated."""
    return [c for c in result.all_constraints if c.status is Status.NOT_EVALUATED]


def failed(result: Result) -> list[ConstraintResult]:
    """Constraints (lesions' included) that failed."""
    return [c for c in result.all_constraints if c.status is Status.FAIL]


@dataclass(frozen=True)
class MatchRow:
    """One structure-matching decision read from the constraints."""

    structure: str
    matched_roi: str | None
    match: str | None
    lesion: str | None


_FX_RE = re.compile(r"\.(\d+fx)(?:\b|$)")


def table_tags(rows: tuple[ConstraintResult, ...]) -> list[str] | None:
    """When rows repeat (structure, metric, basis), e.g. one per fraction table of a
    multi-plan case, a tag telling them apart: ``3fx`` from the id, else the whole id."""
    keys = [(c.lesion, c.structure, c.metric, c.dose_basis) for c in rows]
    if len(set(keys)) == len(keys):
        return None
    tags = []
    for c in rows:
        m = _FX_RE.search(c.id)
        tags.append(m.group(1) if m else c.id)
    return tags


def matching_decisions(result: Result) -> list[MatchRow]:
    """Unique (structure, ROI, how) triples in constraint order."""
    out: list[MatchRow] = []
    seen: set[tuple[str, str | None, str | None, str | None]] = set()
    for c in result.all_constraints:
        key = (c.structure, c.matched_roi, c.match, c.lesion)
        if key not in seen:
            seen.add(key)
            out.append(MatchRow(*key))
    return out


def counts_text(result: Result) -> str:
    """``2 failed · 14 passed · 1 not evaluated (17 constraints)``."""
    n = result.counts
    total = sum(n.values())
    return (
        f"{n['fail']} failed · {n['pass']} passed · {n['not_evaluated']} not evaluated "
        f"({total} constraints)"
    )


# -- lesion metrics --------------------------------------------------------------------

#: Preferred order and display names of lesion metrics (keys as evaluate writes them).
LESION_METRIC_LABELS: dict[str, str] = {
    "D95%[Gy]": "D95%",
    "D98%[Gy]": "D98%",
    "D2%[Gy]": "D2%",
    "D50%[Gy]": "D50%",
    "V100%[%]": "V100%",
    "Min[Gy]": "Dmin",
    "Dmin[Gy]": "Dmin",
    "Max[Gy]": "Dmax",
    "Dmax[Gy]": "Dmax",
    "Mean[Gy]": "Dmean",
    "CI_RTOG": "RTOG CI",
    "CI_Paddick": "Paddick CI",
    "GI": "Gradient index",
    "R100%": "R100%",
    "R50%": "R50%",
    "D2cm[%]": "D2cm",
    "D2cm[Gy]": "D2cm",
}

_UNIT_RE = re.compile(r"\[(Gy|cc|%)\]$")


def metric_unit(key: str) -> str:
    """Unit from a metric key's ``[unit]`` suffix; ``ratio`` when there is none."""
    m = _UNIT_RE.search(key)
    return m.group(1) if m else "ratio"


@dataclass(frozen=True)
class LesionRow:
    """One line of a lesion table: a metric value and, when the protocol has one, its rule."""

    label: str
    key: str
    value: float | None
    unit: str
    constraint: ConstraintResult | None


def lesion_rows(lesion: LesionResult) -> list[LesionRow]:
    """Metrics in preferred order, each with its constraint; then unmatched constraints."""
    by_metric: dict[str, ConstraintResult] = {}
    for c in lesion.constraints:
        by_metric.setdefault(c.metric, c)
    order = list(LESION_METRIC_LABELS)
    keys = sorted(
        lesion.metrics,
        key=lambda k: (order.index(k) if k in order else len(order), list(lesion.metrics).index(k)),
    )
    rows: list[LesionRow] = []
    used: set[int] = set()
    for key in keys:
        c = by_metric.get(key)
        if c is not None:
            used.add(id(c))
        unit = c.unit if c is not None else metric_unit(key)
        label = LESION_METRIC_LABELS.get(key, key)
        # the value that was judged is the constraint's; the metric dict is the fallback
        value = c.value if c is not None else lesion.metrics[key]
        rows.append(LesionRow(label, key, value, unit, c))
    for c in lesion.constraints:
        if id(c) not in used:
            rows.append(LesionRow(c.metric, c.metric, c.value, c.unit, c))
    return rows


def person_name(pn: str | None) -> str:
    """A DICOM person name for display: ``Family^Given^Middle`` -> ``Family, Given Middle``."""
    if not pn:
        return "—"
    first_group = pn.split("=")[0]
    parts = [p.strip() for p in first_group.split("^")]
    given = " ".join(p for p in parts[1:] if p)
    return f"{parts[0]}, {given}" if given and parts[0] else (parts[0] or given or pn)


def status_class(status: Status | Verdict) -> str:
    """CSS-safe class for a status or verdict (``pass``, ``fail``, ``ne``, ``incomplete``)."""
    return {"not_evaluated": "ne"}.get(status.value, status.value)


def fractions_text(plan: PlanInfo) -> str:
    """The number of fractions for a report header: ``5``, ``mixed`` or ``unknown``."""
    if plan.fractions is not None:
        return str(plan.fractions)
    return "mixed" if "mixed" in plan.fractions_source else "unknown"


def plan_maximum_text(pm: PlanMaximum, several_plans: bool = False) -> str:
    """Where a plan's dose maximum lies, as one sentence for every report.

    ``Plan maximum 62.21 Gy at (-110.5, 3.5, 70.0) mm: inside PTVp (information only)``.
    With several plans the plan is named and "every PTV" is the plan's.
    """
    where = ", ".join(f"{v:.1f}" for v in pm.position_mm)
    head = f"Plan maximum ({pm.plan_label})" if several_plans else "Plan maximum"
    text = f"{head} {pm.value_gy:.2f} Gy at ({where}) mm"
    if pm.points_at_max > 1:
        text += f" (first of {pm.points_at_max} grid points with this value)"
    kind = pm.target_kind
    if pm.inside is None:
        text += f": inside a {kind} or not is unknown ({pm.reason or 'no reason recorded'})"
    elif pm.inside:
        text += ": inside " + ", ".join(pm.inside)
    else:
        text += f": outside every {kind}" + (" of this plan" if several_plans else "")
    if pm.judged_by:
        return text + f" (judged by protocol row {pm.judged_by})"
    return text + " (information only)"


def plan_maxima(result: Result) -> list[PlanMaximum]:
    """The distinct plan maxima of ``result``'s lesions, in lesion order."""
    out: list[PlanMaximum] = []
    for lesion in result.lesions:
        pm = lesion.plan_maximum
        if pm is not None and pm not in out:
            out.append(pm)
    return out


def several_plans(result: Result) -> bool:
    """True when the lesions of ``result`` lie on more than one plan."""
    return len({lesion.plan_label for lesion in result.lesions}) > 1
