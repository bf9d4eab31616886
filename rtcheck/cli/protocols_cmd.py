"""``rtcheck protocols list`` and ``rtcheck protocols show ID``: what the protocols contain."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from rtcheck.cli.options import format_option
from rtcheck.errors import ConfigError
from rtcheck.protocol import Protocol, Table, list_protocols, load_protocol, protocol_dirs
from rtcheck.protocol.export import (
    constraint_flags,
    header_lines,
    protocol_summary,
    protocol_to_dict,
)

_FORMAT = format_option(text="Human table or JSON.")


def register(cli: click.Group) -> None:
    """Add the ``protocols`` command group to ``cli``."""

    @cli.group(name="protocols", help="List and show constraint protocols (constraints/*.yaml).")
    def protocols() -> None:
        pass

    @protocols.command(name="list", help="List the protocols found, with their fractionations.")
    @_FORMAT
    def list_cmd(fmt: str) -> int:
        found = list_protocols()
        if fmt == "json":
            click.echo(json.dumps([protocol_summary(p) for p in found], indent=2))
            return 0
        table = RichTable(title="rtcheck protocols")
        for col in ("id", "title", "fractions", "levels", "file"):
            table.add_column(col)
        for p in found:
            fx = p.fractions_text
            cells = (p.id, p.title, fx, ", ".join(p.levels), p.source_file or "")
            table.add_row(*(escape(c) for c in cells))
        console = _console()
        console.print(table)
        console.print(f"searched: {', '.join(str(d) for d in protocol_dirs())}", markup=False)
        return 0

    @protocols.command(name="show", help="Show a protocol (id or YAML path) table by table.")
    @click.argument("protocol")
    @click.option("--fractions", type=int, help="Only the table for this number of fractions.")
    @_FORMAT
    def show_cmd(protocol: str, fractions: int | None, fmt: str) -> int:
        proto = load_protocol(protocol)
        if fractions is not None and proto.table_for(fractions) is None:
            available = proto.fractions_text
            raise ConfigError(
                f"protocol {proto.id} has no table for {fractions} fractions "
                f"(tables: {available}); rtcheck never uses another table"
            )
        if fmt == "json":
            click.echo(json.dumps(protocol_to_dict(proto, fractions), indent=2))
            return 0
        _show(proto, fractions)
        return 0


def _console() -> Console:
    probe = Console()
    return probe if probe.is_terminal else Console(width=160)


def _show(proto: Protocol, fractions: int | None) -> None:
    console = _console()
    lines = header_lines(proto)
    for line in lines:
        console.print(line, markup=False, highlight=False)
    shown = [proto.tables[fx] for fx in proto.fractions if fractions in (None, fx)]
    for table in [*shown, *([proto.any_table] if proto.any_table is not None else [])]:
        console.print(_constraint_table(table))
        _print_target_rules(console, table)
    for o in proto.omitted:
        text = f"not shipped: {o.what} [{', '.join(o.source)}]: {o.reason}"
        console.print(text, markup=False, highlight=False)


def _constraint_table(table: Table) -> RichTable:
    head = (
        "any number of fractions" if table.fractions is None else f"{table.fractions} fraction(s)"
    )
    title = head + (f" - {table.label}" if table.label else "")
    out = RichTable(title=title, show_lines=False)
    for col in ("structure", "metric", "limits", "source", "flags", "note"):
        out.add_column(col, overflow="fold")
    for c in table.constraints:
        limits = "; ".join(
            f"{lvl} {c.comparator.value} {v:g} {c.unit}" for lvl, v in c.limits.items()
        )
        flags = constraint_flags(c)
        note = c.unconfirmed_reason if not c.confirmed else (c.note or c.endpoint or "")
        cells = (c.structure, c.metric.canonical, limits, "; ".join(c.source), ", ".join(flags))
        out.add_row(*(escape(x) for x in (*cells, note or "")))
    return out


def _print_target_rules(console: Console, table: Table) -> None:
    if table.global_max_in_target is not None:
        rule = table.global_max_in_target
        console.print(
            f"global maximum must lie inside a {rule.target.value} [{'; '.join(rule.source)}]"
        )
    conf = table.conformity
    if conf is None:
        return
    out = RichTable(
        title=f"conformity by {conf.target.value} volume ({conf.interpolation} interpolation)"
        f" [{'; '.join(conf.source)}]"
    )
    out.add_column("volume cc")
    for col in conf.columns:
        for lvl in col.limits:
            out.add_column(escape(f"{col.index.value} {lvl} ({col.comparator.value})"))
    for i, vol in enumerate(conf.volume_cc):
        cells = [f"{vol:g}"] + [
            f"{vals[i]:g}" for col in conf.columns for vals in col.limits.values()
        ]
        out.add_row(*cells)
    console.print(out)
