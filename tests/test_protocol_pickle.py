"""Every shipped protocol survives pickling (process pools, Dask) and stays read-only."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Mapping

import pytest

from rtcheck.protocol import Protocol, builtin_protocol_dir, load_protocol

SHIPPED = sorted(p.stem for p in builtin_protocol_dir().glob("*.yaml"))


def _mappings(p: Protocol) -> list[Mapping]:
    """Every mapping a protocol holds (top level, alpha/beta, constraint limits)."""
    out: list[Mapping] = [p.sources, p.derived, p.tables]
    if p.alpha_beta is not None:
        out.append(p.alpha_beta.structures)
    tables = [*p.tables.values(), *([p.any_table] if p.any_table is not None else [])]
    for t in tables:
        out += [c.limits for c in t.constraints]
    return out


def test_the_shipped_protocols_are_found() -> None:
    assert {"tg101", "rtog0915", "rtog0813", "hytec-cord-eqd2"} <= set(SHIPPED)


@pytest.mark.parametrize("protocol_id", SHIPPED)
@pytest.mark.parametrize("level", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_protocol_pickle_round_trip(protocol_id: str, level: int) -> None:
    p = load_protocol(protocol_id)
    q = pickle.loads(pickle.dumps(p, protocol=level))
    assert q is not p and q == p and hash(q) == hash(p)
    assert q.source_file == p.source_file
    for fx in (*p.tables, None):
        assert q.table_for(fx) == p.table_for(fx)
    tables = [*p.tables.values(), *([p.any_table] if p.any_table is not None else [])]
    for t in tables:
        for c in t.constraints:
            (m_q, note_q), (m_p, note_p) = q.metric_to_evaluate(c), p.metric_to_evaluate(c)
            assert (m_q.canonical, note_q) == (m_p.canonical, note_p)
    # still read-only after the round trip (a worker cannot change a shared protocol)
    for m in _mappings(q):
        with pytest.raises(TypeError):
            m["x"] = 1  # type: ignore[index]


@pytest.mark.parametrize("protocol_id", SHIPPED)
def test_protocol_deepcopy_and_hash(protocol_id: str) -> None:
    p = load_protocol(protocol_id)
    q = copy.deepcopy(p)
    assert q == p and hash(q) == hash(p)
    # every mapping is read-only, also those left at their default (e.g. no derived structures)
    for m in _mappings(p):
        with pytest.raises(TypeError):
            m["x"] = 1  # type: ignore[index]
