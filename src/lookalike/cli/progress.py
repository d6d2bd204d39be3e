"""The one Rich progress bar every long command shows on stderr."""

from __future__ import annotations

from typing import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f} img/s" if task.speed else "– img/s", style="progress.data.speed")


def progress_bar(console: Console, *, disable: bool = False, label_width: int | None = None, rate: bool = False,
                 status: bool = False, transient: bool = False) -> Progress:
    """spinner, label, bar, done/total, [img/s], [status], elapsed, eta."""
    label = "{task.description" + (f":<{label_width}" if label_width else "") + "}"
    columns: list = [SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn()]
    if rate:
        columns.append(RateColumn())
    if status:
        columns.append(TextColumn("{task.fields[status]}"))
    columns += [TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    return Progress(*columns, console=console, transient=transient, disable=disable)


def phase_tracker(bar: Progress) -> Callable[[str, int, int], None]:
    """A (phase, done, total) callback that gives each new phase its own line."""
    tasks: dict[str, TaskID] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total, status="")
        bar.update(tasks[phase], completed=done, total=total)

    return progress
