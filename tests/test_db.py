"""Results database: schema = migrations, per-case transactions, reuse lookup, history queries.

Tests taking ``db`` or ``db_url`` run on SQLite and again on a fresh PostgreSQL schema: in the
database of ``RTCHECK_TEST_POSTGRES_URL`` if set, else in a throwaway local cluster started once per
session (``tests/db_backends.py``); without either, that half is skipped with a message.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import multiprocessing
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from db_backends import BACKENDS, fresh_database
from sqlalchemy import text
from test_batch import make_tiny_case

from rtcheck.cli import main
from rtcheck.db import CaseRecord, HistoryQuery, ResultsDB, RunInfo, case_history, constraint_rates
from rtcheck.db.engine import create_db_engine, current_revision, database_url, upgrade
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


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite file path, or URL of a fresh PostgreSQL schema (skipped when no server)."""
    server = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with fresh_database(request.param, tmp_path, server) as url:
        yield url


@pytest.fixture()
def db(db_url: str) -> ResultsDB:
    store = ResultsDB.open(db_url)
    yield store
    store.close()


def test_migrations_create_exactly_the_models(db: ResultsDB) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_reopen_is_a_noop_and_newer_schema_is_refused(db_url: str) -> None:
    ResultsDB.open(db_url).close()
    ResultsDB.open(db_url).close()
    store = ResultsDB.open(db_url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num='9999'"))
    store.close()
    with pytest.raises(ConfigError, match="newer"):
        ResultsDB.open(db_url)


def test_bad_locations_are_config_errors(tmp_path: Path) -> None:
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


def test_history_cli(
    db: ResultsDB, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _history_db(db)
    path = db_url
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


def test_times_are_stored_as_utc_instants(db: ResultsDB) -> None:
    run = db.start_run(_info())
    # 01:30 on 1 February at UTC+2 is 23:30 UTC on 31 January: the January bucket
    local = datetime(2024, 2, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    result = _result({"Cord": Status.FAIL})
    db.record_case(run, _record("P1-a", "fail", local, counts=result.counts), result)
    db.record_case(run, _record("P2-a", "pass", datetime(2024, 3, 1, 12, 0)), None)  # naive: UTC
    [(back, _), (naive, _)] = db.run_cases(run)
    assert back.created == local and back.created.utcoffset() == timedelta(0)
    assert (back.created.day, back.created.hour) == (31, 23)
    assert naive.created == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    [cord] = [r for r in constraint_rates(db, HistoryQuery()) if r["constraint_id"] == "Cord"]
    assert cord["period"] == "2024-01"
    just_before = datetime(2024, 1, 31, 23, 29, tzinfo=UTC)
    just_after = datetime(2024, 1, 31, 23, 31, tzinfo=UTC)
    assert len(case_history(db, HistoryQuery(since=just_before))) == 2
    assert [r["patient_id"] for r in case_history(db, HistoryQuery(since=just_after))] == ["P2"]
    assert [r["created"] for r in case_history(db, HistoryQuery())] == [
        "2024-01-31T23:30:00+00:00",
        "2024-03-01T12:00:00+00:00",
    ]


def test_long_free_text_is_stored_whole(db: ResultsDB) -> None:
    """Keys from deep paths, long ROI and protocol names: SQLite never limited them."""
    run = db.start_run(replace(_info(), protocol_id="p" * 300, executor="receiver " + "h" * 300))
    key = "file:" + "/".join(f"series_folder_{i:03d}" for i in range(30)) + "/x.dcm"
    roi = "PTV_" + "x" * 296
    lesion = LesionResult(
        roi, 1, 50.0, "s" * 150, "L" * 250, 5, 1.0, {}, (_constraint(roi + ".D95", Status.PASS),),
        (Finding("lesion.note", "note", subject=roi),),
    )  # fmt: skip
    result = replace(_result({"C" * 250 + ".Max": Status.PASS}), lesions=(lesion,))
    rec = _record("P1-a", "pass", datetime(2024, 1, 5, tzinfo=UTC), patient_id="I" * 300)
    rec = replace(rec, key=key, protocol_id="p" * 300, protocol_version="v" * 150)
    db.record_case(run, rec, result)
    [(back, _)] = db.run_cases(run)
    assert (back.key, back.patient_id) == (key, "I" * 300)
    assert len(key) > 500 and db.runs()[0]["executor"] == "receiver " + "h" * 300
    with db.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT lesion, constraint_id FROM constraint_results ORDER BY position")
        ).all()
        scope = conn.execute(text("SELECT scope FROM findings WHERE subject IS NOT NULL")).scalar()
    assert stored == [(None, "C" * 250 + ".Max"), (roi, roi + ".D95")]
    assert scope == f"lesion:{roi}"


def _details(db: ResultsDB) -> dict[str, int]:
    return {t: db.count(t) for t in ("runs", "cases", "run_cases", "constraint_results",
                                     "lesions", "findings")}  # fmt: skip


def test_upgrade_from_0001_keeps_every_row(db_url: str) -> None:
    engine = create_db_engine(database_url(db_url))
    upgrade(engine, "0001")
    old = ResultsDB(engine)  # the 0001 tables have the same columns, only shorter types
    run = old.start_run(_info())
    result = _result({"Cord": Status.FAIL, "Eso": Status.PASS})
    when = datetime(2024, 1, 5, tzinfo=UTC)
    old.record_case(run, _record("P1-a", "fail", when, counts=result.counts), result)
    before = _details(old)
    assert current_revision(engine) == "0001" and before["constraint_results"] == 3
    old.close()
    with ResultsDB.open(db_url) as db:
        assert current_revision(db.engine) == "0002"
        assert _details(db) == before  # a table copy must not cascade-delete the children
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        with db.engine.begin() as conn:  # foreign keys still cascade after the copies
            conn.execute(text("DELETE FROM runs"))
        assert set(_details(db).values()) == {0}


def test_failed_sqlite_upgrade_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    engine = create_db_engine(database_url(path))
    upgrade(engine, "0001")
    with engine.begin() as conn:  # an orphan row, as an outside tool could leave
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.execute(
            text(
                "INSERT INTO findings (case_id, position, scope, code, severity, message) "
                "VALUES (99, 0, 'case', 'x', 'info', 'orphan')"
            )
        )
    for _ in range(2):  # the second attempt meets the same, untouched database
        with pytest.raises(ConfigError, match=r"no parent row .* database is unchanged"):
            ResultsDB.open(path)
    assert current_revision(engine) == "0001"
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).all()
        scope_type = conn.execute(
            text("SELECT type FROM pragma_table_info('findings') WHERE name='scope'")
        ).scalar()
    assert sorted(t for (t,) in tables) == sorted(
        ["alembic_version", "runs", "cases", "run_cases", "constraint_results", "lesions",
         "findings"]
    )  # fmt: skip
    assert scope_type == "VARCHAR(220)"
    engine.dispose()


def test_batch_and_history_cli_end_to_end(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Uniform 10 Gy and 40 Gy doses: the cord maximum is the dose (tg101, 5 fx: < 30 Gy)."""
    root = tmp_path / "in"
    make_tiny_case(root / "T1", "T1", 10.0)
    make_tiny_case(root / "T2", "T2", 40.0)
    args = ["batch", str(root), "-p", "tg101", "-o", str(tmp_path / "out"), "-j", "1"]
    args += ["--db", db_url, "--report-formats", "none", "--no-progress"]
    assert main(args) == 1  # one failing plan
    assert main(args) == 1  # unchanged inputs: reused, same verdicts
    assert not (tmp_path / "out" / "results.sqlite").exists()
    capsys.readouterr()
    with ResultsDB.open(db_url) as db:
        runs = db.runs()
        assert [(r["status"], r["n_computed"], r["n_reused"]) for r in runs] == [
            ("complete", 2, 0),
            ("complete", 0, 2),
        ]
        assert db.count("cases") == 2 and db.count("run_cases") == 4
        with db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT c.patient_id, r.value, r.status FROM constraint_results r "
                    "JOIN cases c ON c.id = r.case_id "
                    "WHERE r.constraint_id LIKE 'SpinalCord.Max%' ORDER BY c.patient_id"
                )
            ).all()
    assert [(p, s) for p, _, s in rows] == [("T1", "pass"), ("T2", "fail")]
    assert rows[0][1] == pytest.approx(10.0, abs=1e-3)
    assert rows[1][1] == pytest.approx(40.0, abs=1e-3)
    assert main(["history", "--db", db_url, "--format", "json", "--period", "all"]) == 0
    rates = json.loads(capsys.readouterr().out)
    cord = [r for r in rates if r["constraint_id"].startswith("SpinalCord.Max")]
    assert [(r["pass"], r["fail"], r["fail_rate"]) for r in cord] == [(1, 1, 0.5)]
    assert main(["history", "--db", db_url, "--cases", "--failures", "--format", "json"]) == 0
    assert [r["patient_id"] for r in json.loads(capsys.readouterr().out)] == ["T2"]


def _open_after(barrier: Any, url: str) -> None:
    barrier.wait()
    ResultsDB.open(url).close()  # an error exits the process with code 1 (traceback on stderr)


def test_concurrent_first_opens_all_succeed(db_url: str) -> None:
    """Batches and a receiver starting at once on a new database: one migrates, the rest wait."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_open_after, args=(barrier, db_url)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with ResultsDB.open(db_url) as db:
        assert current_revision(db.engine) == "0002" and db.count("runs") == 0


def test_missing_postgres_driver_names_the_extra() -> None:
    if importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here: the missing-driver message cannot be shown")
    with pytest.raises(ConfigError, match=r"rtcheck\[postgres\].*postgresql\+psycopg://"):
        ResultsDB.open("postgresql+psycopg2://user:secret@localhost/x")
