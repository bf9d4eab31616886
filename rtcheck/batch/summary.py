"""Batch summaries: ``summary.csv``, ``summary.json`` and ``index.html`` in the results folder.

Summaries are reproducible: rows sorted by patient, label and case key; no timestamps, run
times, worker names or "reused" flags, so the same inputs give byte-identical summaries
whatever ``--jobs``, the executor or an interrupted-and-resumed run. (Times live in the
database and in each case report's ``created`` field.)
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rtcheck.db.records import CaseRecord
from rtcheck.report.atomic import atomic_write_bytes

__all__ = ["CSV_COLUMNS", "batch_exit_code", "sort_records", "totals", "write_summaries"]

CSV_COLUMNS = (
    "patient_id",
    "label",
    "verdict",
    "n_pass",
    "n_fail",
    "n_not_evaluated",
    "n_findings",
    "n_inputs",
    "error",
    "report",
    "protocol_id",
    "protocol_version",
    "study_uid",
    "key",
)

#: Batch exit codes, worst first: any error -> 2, else any fail -> 1, else any incomplete -> 3.
EXIT_PRECEDENCE = (("error", 2), ("fail", 1), ("incomplete", 3))


def sort_records(records: Sequence[CaseRecord]) -> list[CaseRecord]:
    """Records in summary order: patient ID, label, case key."""
    return sorted(records, key=lambda r: (r.patient_id or "", r.label, r.key))


def totals(records: Sequence[CaseRecord]) -> dict[str, int]:
    """Number of cases per verdict, and ``cases`` in all."""
    out = {"cases": len(records), "pass": 0, "fail": 0, "incomplete": 0, "error": 0}
    for r in records:
        out[r.verdict] = out.get(r.verdict, 0) + 1
    return out


def batch_exit_code(records: Sequence[CaseRecord]) -> int:
    """2 if any case errored, else 1 if any failed, else 3 if any is incomplete, else 0."""
    verdicts = {r.verdict for r in records}
    for verdict, code in EXIT_PRECEDENCE:
        if verdict in verdicts:
            return code
    return 0


def main_report(record: CaseRecord) -> str:
    """The report an index links to: HTML if written, else PDF, else the first one."""
    for ext in (".html", ".pdf"):
        for rel in record.reports:
            if rel.endswith(ext):
                return rel
    return record.reports[0] if record.reports else ""


def _csv_bytes(records: Sequence[CaseRecord]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        row = r.summary_dict()
        row["report"] = main_report(r)
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_COLUMNS})
    return buf.getvalue().encode("utf-8")


def _json_bytes(records: Sequence[CaseRecord], meta: dict[str, Any]) -> bytes:
    doc = {
        "schema": "rtcheck.batch-summary/1",
        **meta,
        "totals": totals(records),
        "exit_code": batch_exit_code(records),
        "cases": [r.summary_dict() for r in records],
    }
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f3f3f3}.pass{color:#176117}.fail{color:#b00020;font-weight:bold}
.incomplete{color:#8a5a00;font-weight:bold}.error{color:#fff;background:#b00020}
.num{text-align:right}"""


def _html_bytes(records: Sequence[CaseRecord], meta: dict[str, Any]) -> bytes:
    e = html.escape
    t = totals(records)
    proto = meta.get("protocol", {})
    rows = []
    for r in records:
        link = main_report(r)
        label = f'<a href="{e(link)}">{e(r.label)}</a>' if link else e(r.label)
        c = r.counts
        rows.append(
            f"<tr><td>{e(r.patient_id or '')}</td><td>{label}</td>"
            f'<td class="{e(r.verdict)}">{e(r.verdict.upper())}</td>'
            f'<td class="num">{c.get("pass", 0)}</td><td class="num">{c.get("fail", 0)}</td>'
            f'<td class="num">{c.get("not_evaluated", 0)}</td>'
            f'<td class="num">{r.n_findings}</td><td>{e(r.error or "")}</td></tr>'
        )
    head = (
        "<tr><th>Patient</th><th>Case</th><th>Verdict</th><th>Pass</th><th>Fail</th>"
        "<th>Not evaluated</th><th>Findings</th><th>Error</th></tr>"
    )
    counts = ", ".join(f"{t[k]} {k}" for k in ("pass", "fail", "incomplete", "error"))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>rtcheck batch: {e(str(meta.get('root', '')))}</title><style>{_CSS}</style>"
        f"</head><body><h1>rtcheck batch summary</h1>"
        f"<p>Protocol: {e(str(proto.get('id', '')))} {e(str(proto.get('version', '')))}"
        f" &middot; rtcheck {e(str(meta.get('rtcheck_version', '')))}"
        f" &middot; root {e(str(meta.get('root', '')))}</p>"
        f"<p>{t['cases']} cases: {e(counts)} &middot; exit code {batch_exit_code(records)}</p>"
        f"<table>{head}{''.join(rows)}</table>"
        '<p>Summary also as <a href="summary.csv">CSV</a> and '
        '<a href="summary.json">JSON</a>.</p></body></html>\n'
    )
    return page.encode("utf-8")


def write_summaries(
    out_dir: str | Path, records: Sequence[CaseRecord], meta: dict[str, Any]
) -> tuple[str, ...]:
    """Write the three summary files atomically; returns their paths."""
    ordered = sort_records(records)
    out = Path(out_dir)
    files = {
        "summary.csv": _csv_bytes(ordered),
        "summary.json": _json_bytes(ordered, meta),
        "index.html": _html_bytes(ordered, meta),
    }
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return tuple(str(out / name) for name in files)
