"""Results database: schema = migrations, per-case transactions, reuse lookup, history queries."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from rtcheck.cli import main
from rtcheck.db import CaseRecord, HistoryQuery, ResultsDB, RunInfo, case_history, constraint_rates
from rtcheck.db.engine import database_url
from rtcheck.db.models import Base
from rtcheck.errors import ConfigError, Finding, RtcheckError
from rtcheck.result import (
    ConstraintResult,
    LesionResult,
    Limit,
    PlanInfo,
    ProtocolInfo,
    Result,
    Status,
    Verdict,
)


def _info() -> RunInfo:
    return RunInfo("batch", "/in", "/out", "tg101", "v1", "ab" * 32, "0.1.0", {"x": 1}, "test")


def _constraint(cid: str, status: Status, lesion: str | None = None) -> ConstraintResult:
    return ConstraintResult(
        id=cid,
        structure=cid.split(".")[0],
        matched_roi="roi",
        match="exact",
        metric="Max[Gy]",
        value=None if status is Status.NOT_EVALUATED else 12.5,
        unit="Gy",
        limits=(Limit("mandatory", "<", 30.0, "Gy"),),
        status=status,
        lesion=lesion,
    )


def _result(statuses: dict[str, Status]) -> Result:
    lesion = LesionResult(
        "PTV1",
        1,
        50.0,
        "RT Plan",
        "PLAN",
        5,
        12.0,
        {"CI_Paddick": 0.8},
        (_constraint("PTV.D95", Status.PASS),),
        (Finding("lesion.note", "a lesion finding"),),
    )
    return Result(
        verdict=Verdict.FAIL if Status.FAIL in statuses.values() else Verdict.PASS,
        protocol=ProtocolInfo("tg101", "t", "v1", "c"),
        plan=PlanInfo("P1", None, ("PLAN",), 5, "RT Plan"),
        constraints=tuple(_constraint(k, v) for k, v in statuses.items()),
        lesions=(lesion,),
        findings=(Finding("case.note", "a case finding"),),
    )


def _record(key: str, verdict: str, created: datetime, **kw: object) -> CaseRecord:
    return CaseRecord(
        key=key,
        fingerprint=kw.pop("fingerprint", f"fp-{key}-{created.isoformat()}"),  # type: ignore[arg-type]
        slug=key,
        label=f"{key} label",
        patient_id=kw.pop("patient_id", key.split("-")[0]),  # type: ignore[arg-type]
        study_uid=None,
        protocol_id="tg101",
        protocol_version="v1",
        rtcheck_version="0.1.0",
        verdict=verdict,
        created=created,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture()
def db(tmp_path: Path) -> ResultsDB:
    store = ResultsDB.open(tmp_path / "r.sqlite")
    yield store
    store.close()


def test_migrations_create_exactly_the_models(db: ResultsDB) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_reopen_is_a_noop_and_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    ResultsDB.open(path).close()
    ResultsDB.open(path).close()
    store = ResultsDB.open(path)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num='9999'"))
    store.close()
    with pytest.raises(ConfigError, match="newer"):
        ResultsDB.open(path)
    with pytest.raises(ConfigError, match="does not exist"):
        database_url(tmp_path / "missing" / "r.sqlite")
    with pytest.raises(ConfigError):
        ResultsDB.open("nosuchdialect://x")


def test_record_case_stores_every_detail(db: ResultsDB) -> None:
    run = db.start_run(_info())
    result = _result({"SpinalCord.Max": Status.PASS, "Esophagus.Max": Status.FAIL})
    rec = _record("P1-a", "fail", datetime(2024, 1, 5, tzinfo=UTC), counts=result.counts)
    case_id = db.record_case(run, rec, result)
    assert db.count("constraint_results") == 3  # two organ constraints + one lesion rule
    assert db.count("lesions") == 1 and db.count("findings") == 2
    stored = db.case_result(case_id)
    assert stored is not None and stored["verdict"] == "fail" and "dvhs" not in stored
    with db.engine.connect() as conn:
        lesion = conn.execute(
            text("SELECT lesion FROM constraint_results WHERE constraint_id='PTV.D95'")
        ).scalar()
    assert lesion == "PTV1"
    [(back, reused)] = db.run_cases(run)
    assert not reused and back.counts == {"pass": 2, "fail": 1, "not_evaluated": 0}
    assert back.created == datetime(2024, 1, 5, tzinfo=UTC)


def test_a_failed_case_write_leaves_nothing_behind(db: ResultsDB) -> None:
    rec = _record("P1-a", "pass", datetime(2024, 1, 5, tzinfo=UTC))
    with pytest.raises(RtcheckError, match="database error"):
        db.record_case(12345, rec, _result({"SpinalCord.Max": Status.PASS}))  # no such run
    assert db.count("cases") == 0 and db.count("constraint_results") == 0


def test_reusable_skips_transient_errors(db: ResultsDB) -> None:
    run = db.start_run(_info())
    when = datetime(2024, 1, 5, tzinfo=UTC)
    db.record_case(run, _record("a", "pass", when, fingerprint="f1"), None)
    db.record_case(run, _record("b", "error", when, fingerprint="f2", error_kind="input"), None)
    db.record_case(run, _record("c", "error", when, fingerprint="f3", error_kind="worker"), None)
    found = db.reusable(["f1", "f2", "f3", "f4"])
    assert sorted(found) == ["f1", "f2"]


def _history_db(db: ResultsDB) -> None:
    run = db.start_run(_info())
    jan, jan2, feb = (datetime(2024, m, d, tzinfo=UTC) for m, d in ((1, 5), (1, 20), (2, 3)))
    cases = [
        ("P1-a", jan, {"Cord": Status.FAIL, "Eso": Status.PASS}),
        ("P1-a", jan2, {"Cord": Status.PASS, "Eso": Status.PASS}),  # same case, later in Jan
        ("P2-a", jan, {"Cord": Status.PASS, "Eso": Status.NOT_EVALUATED}),
        ("P2-a", feb, {"Cord": Status.FAIL, "Eso": Status.FAIL}),
    ]
    for key, when, statuses in cases:
        result = _result(statuses)
        rec = _record(key, result.verdict.value, when, counts=result.counts)
        db.record_case(run, rec, result)
    db.record_case(run, _record("P3-a", "error", feb, error="bad", error_kind="input"), None)


def test_constraint_rates_per_month(db: ResultsDB) -> None:
    _history_db(db)
    rows = constraint_rates(db, HistoryQuery(period="month"))
    by = {(r["constraint_id"], r["period"]): r for r in rows}
    # January: P1's newest evaluation (pass) and P2's (pass) -> 0 of 2 failed
    assert (by["Cord", "2024-01"]["pass"], by["Cord", "2024-01"]["fail"]) == (2, 0)
    assert by["Cord", "2024-01"]["fail_rate"] == 0.0
    assert by["Eso", "2024-01"]["not_evaluated"] == 1
    assert by["Eso", "2024-01"]["fail_rate"] == 0.0  # 1 pass evaluated, 1 not evaluated
    assert by["Cord", "2024-02"]["fail_rate"] == 1.0
    assert by["PTV.D95", "2024-01"]["n"] == 2
    failing = constraint_rates(db, HistoryQuery(period="all", failures=True))
    assert [(r["constraint_id"], r["fail"]) for r in failing] == [("Cord", 1), ("Eso", 1)]
    p1 = constraint_rates(db, HistoryQuery(patient="P1", period="all"))
    assert {r["constraint_id"]: r["n"] for r in p1} == {"Cord": 1, "Eso": 1, "PTV.D95": 1}


def test_case_history_filters(db: ResultsDB) -> None:
    _history_db(db)
    assert len(case_history(db, HistoryQuery())) == 5
    since = case_history(db, HistoryQuery(since=datetime(2024, 2, 1, tzinfo=UTC)))
    assert [r["verdict"] for r in since] == ["fail", "error"]
    bad = case_history(db, HistoryQuery(failures=True))
    assert [r["patient_id"] for r in bad] == ["P1", "P2", "P3"]
    assert case_history(db, HistoryQuery(protocol="other")) == []
    with pytest.raises(ConfigError):
        HistoryQuery(period="fortnight")


def test_history_cli(db: ResultsDB, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _history_db(db)
    path = str(tmp_path / "r.sqlite")
    assert main(["history", "--db", path, "--format", "json", "--period", "year"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["constraint_id"]: r["fail"] for r in rows} == {"Cord": 1, "Eso": 1, "PTV.D95": 0}
    assert main(["history", "--db", path, "--cases", "--failures", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["verdict"] for r in table] == ["fail", "fail", "error"]
    assert main(["history", "--db", path, "--since", "2024-02-01"]) == 0
    assert "2024-02" in capsys.readouterr().out
    assert main(["history", "--db", path, "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err
    assert main(["history", "--db", str(tmp_path / "none.sqlite")]) == 2
