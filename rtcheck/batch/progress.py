"""Progress display: a rich bar with counts and ETA on a terminal, nothing in a pipe."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rtcheck.db.records import CaseRecord

__all__ = ["BatchProgress"]


class BatchProgress:
    """Context manager showing batch progress on stderr when it is a terminal.

    Parameters
    ----------
    total
        Number of cases.
    enabled
        True/False forces the bar on/off; None shows it only when stderr is a terminal.
    """

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.counts = {"pass": 0, "fail": 0, "incomplete": 0, "error": 0, "reused": 0}
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> BatchProgress:
        if self.enabled and self.total:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]checking"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("batch", total=self.total, counts="")
        return self

    def advance(self, record: CaseRecord, reused: bool = False) -> None:
        """Count one finished case."""
        self.counts[record.verdict] = self.counts.get(record.verdict, 0) + 1
        if reused:
            self.counts["reused"] += 1
        if self._progress is not None:
            c = self.counts
            text = (
                f"[green]{c['pass']} pass[/] [red]{c['fail']} fail[/] "
                f"[yellow]{c['incomplete']} incomplete[/] [magenta]{c['error']} error[/]"
                f" ({c['reused']} reused)"
            )
            self._progress.update(self._task, advance=1, counts=text)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, tb)
            self._progress = None
