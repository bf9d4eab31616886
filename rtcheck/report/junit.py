"""JUnit XML report for CI dashboards (Jenkins, GitLab, GitHub Actions test reporters).

Layout::

    <testsuites>                       totals over everything below
      <testsuite name="rtcheck">       one testcase "plan verdict": failure on FAIL, error on
                                       INCOMPLETE (so an incomplete check is never green),
                                       properties (protocol, plan, counts) and the findings
      <testsuite name="organs at risk">   one testcase per organ-at-risk constraint
      <testsuite name="lesion PTV_1">     one per lesion with constraints

A failed constraint is ``<failure message="D5cc[Gy] = 21.40 Gy, limit mandatory < 19.5 Gy
(margin -1.90 Gy)">``; a constraint not evaluated is ``<skipped message="reason"/>``. The
patient name is left out on purpose (CI logs are often widely readable); the ID is kept.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import BinaryIO

from rtcheck.report.common import (
    SEVERITY_LABELS,
    all_findings,
    exact_number,
    fmt_limit,
    fmt_margin,
    fmt_value,
    table_tags,
)
from rtcheck.result import RESULT_SCHEMA_VERSION, ConstraintResult, Result, Status, Verdict

__all__ = ["render_junit", "write_junit"]

# Characters XML 1.0 forbids (C0 controls except TAB/LF/CR, surrogates, U+FFFE/U+FFFF).
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(text: object) -> str:
    """A string safe for XML 1.0 (forbidden characters become U+FFFD)."""
    return _INVALID_XML.sub("\ufffd", "" if text is None else str(text))


def _case_name(c: ConstraintResult) -> str:
    return f"{c.structure} {c.metric}" + (
        f" [{c.dose_basis}]" if c.dose_basis != "physical" else ""
    )


def _limits_text(c: ConstraintResult) -> str:
    return "; ".join(f"{lim.level} {fmt_limit(lim, c)}" for lim in c.limits) or "no limit"


def _details(c: ConstraintResult) -> str:
    lines = [
        f"id: {c.id}",
        f"structure: {c.structure}; ROI: {c.matched_roi or 'none'} ({c.match or '-'})",
        f"value: {fmt_value(c.value, c.unit, c.limits)}; limits: {_limits_text(c)}",
        f"status: {c.status.value}; level met: {c.level or '-'}; margin: {fmt_margin(c)}",
    ]
    lines += [f"{k}: {v}" for k, v in (("reason", c.reason), ("note", c.note),
              ("source", c.source), ("dose basis", c.dose_basis)) if v]  # fmt: skip
    return "\n".join(lines)


def _testcase(parent: ET.Element, c: ConstraintResult, classname: str, tag: str | None) -> str:
    name = _case_name(c) + (f" ({tag})" if tag else "")
    case = ET.SubElement(
        parent, "testcase", {"classname": _x(classname), "name": _x(name), "time": "0"}
    )
    if c.status is Status.FAIL:
        value = fmt_value(c.value, c.unit, c.limits)
        message = f"{c.metric} = {value}, limit {_limits_text(c)} (margin {fmt_margin(c)})"
        node = ET.SubElement(case, "failure", {"message": _x(message), "type": "ConstraintFailed"})
        node.text = _x(_details(c))
    elif c.status is Status.NOT_EVALUATED:
        ET.SubElement(case, "skipped", {"message": _x(c.reason or "not evaluated")})
    ET.SubElement(case, "system-out").text = _x(_details(c))
    return c.status.value


def _suite(root: ET.Element, name: str, result: Result) -> ET.Element:
    return ET.SubElement(
        root,
        "testsuite",
        {"name": _x(name), "timestamp": _x(result.created), "time": "0"},
    )


def _set_counts(node: ET.Element, statuses: list[str]) -> None:
    node.set("tests", str(len(statuses)))
    node.set("failures", str(statuses.count("fail")))
    node.set("errors", str(statuses.count("error")))
    node.set("skipped", str(statuses.count("not_evaluated")))


def _verdict_suite(root: ET.Element, result: Result) -> list[str]:
    suite = _suite(root, "rtcheck", result)
    props = ET.SubElement(suite, "properties")
    p = result.plan
    for key, value in (
        ("verdict", result.verdict.value),
        ("patient_id", p.patient_id),
        ("plans", ", ".join(p.plan_labels)),
        ("fractions", p.fractions),
        ("fractions_source", p.fractions_source),
        ("dose_summation", p.dose_summation),
        ("alpha_beta", ", ".join(f"{k} {exact_number(v)} Gy" for k, v in p.alpha_beta)),
        ("dose_grid", p.dose_grid),
        ("protocol", f"{result.protocol.id} {result.protocol.version}"),
        ("protocol_file", result.protocol.source_file),
        ("protocol_sha256", result.protocol.source_sha256),
        ("rtcheck_version", result.rtcheck_version),
        ("schema_version", RESULT_SCHEMA_VERSION),
        *((f"count_{k}", v) for k, v in result.counts.items()),
        *(
            (f"input_{i}", f"{f.modality} {f.path} sha256:{f.sha256 or 'not computed'}")
            for i, f in enumerate(result.inputs, 1)
        ),
    ):
        ET.SubElement(props, "property", {"name": key, "value": _x(value)})
    case = ET.SubElement(
        suite, "testcase", {"classname": "rtcheck.verdict", "name": "plan verdict", "time": "0"}
    )
    n = result.counts
    summary = (
        f"{result.verdict.value.upper()}: {n['fail']} failed, {n['pass']} passed, "
        f"{n['not_evaluated']} not evaluated"
    )
    status = "pass"
    if result.verdict is Verdict.FAIL:
        ET.SubElement(case, "failure", {"message": summary, "type": "PlanFailed"})
        status = "fail"
    elif result.verdict is Verdict.INCOMPLETE:
        ET.SubElement(case, "error", {"message": summary, "type": "PlanIncomplete"})
        status = "error"
    lines = [summary, *_finding_lines(result)]
    ET.SubElement(suite, "system-out").text = _x("\n".join(lines))
    _set_counts(suite, [status])
    return [status]


def _finding_lines(result: Result) -> list[str]:
    out = []
    for row in all_findings(result):
        f = row.finding
        about = f.subject or row.where
        out.append(f"{SEVERITY_LABELS[f.severity][1]} [{f.code}] {about}: {f.message}")
    return out


def render_junit(result: Result) -> bytes:
    """The JUnit XML document (UTF-8, with XML declaration)."""
    root = ET.Element("testsuites", {"name": _x(f"rtcheck {result.protocol.id}"), "time": "0"})
    statuses = _verdict_suite(root, result)
    groups: list[tuple[str, str, tuple[ConstraintResult, ...]]] = [
        ("organs at risk", "oar", result.constraints)
    ]
    groups += [(f"lesion {le.name}", f"lesion.{le.name}", le.constraints) for le in result.lesions]
    for name, key, constraints in groups:
        if not constraints:
            continue
        suite = _suite(root, name, result)
        classname = f"rtcheck.{result.protocol.id}.{key}"
        # one testcase per (classname, name): a multi-plan case has the same organ metric once
        # per fraction table; dashboards that merge equal names would hide a failure
        tags = table_tags(constraints) or [None] * len(constraints)
        suite_statuses = [
            _testcase(suite, c, classname, tag) for c, tag in zip(constraints, tags, strict=True)
        ]
        _set_counts(suite, suite_statuses)
        statuses += suite_statuses
    _set_counts(root, statuses)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(result: Result, out: BinaryIO) -> None:
    """Registry writer."""
    out.write(render_junit(result))
