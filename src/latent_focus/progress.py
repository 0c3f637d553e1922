"""The one progress report of every long job: a method restoring planes, a trainer, a batch.

Jobs are generators that yield :class:`Progress`. It is an evented dataclass (psygnal, as CAREamics' training
status is): a consumer keeps one instance as the job's live status and :meth:`Progress.update`\\ s it with each
report, and widgets listen on ``status.events.<field>``. The command line draws the same reports with
:class:`latent_focus.terminal.ProgressLine`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field, fields
from typing import Any

from psygnal import evented


@evented
@dataclass
class Progress:
    """``done`` of ``total`` units (``unit``: e.g. step; none: a share of the work) and what the job is doing.

    Trainers fill in their ``losses`` and latest validation metrics ``val``, the time so far and left, the
    device and the checkpoint just written; ``finished`` marks a job's last report.
    """

    done: int = 0
    total: int = 0
    message: str = ""
    unit: str = ""
    phase: str = ""
    losses: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    device: str = ""
    checkpoint: str | None = None
    finished: bool = False

    @property
    def fraction(self) -> float:
        """The share of the work done, from 0 to 1 (1 when there is no total)."""
        return min(self.done / self.total, 1.0) if self.total else 1.0

    def update(self, report: Progress) -> None:
        """Take every value of ``report``; ``done`` last, so a listener on ``events.done`` sees the whole report."""
        for f in fields(self):
            if f.name != "done":
                setattr(self, f.name, getattr(report, f.name))
        self.done = report.done


def run(gen: Generator[Progress, None, Any], on_progress: Callable[[Progress], None] | None = None) -> Any:
    """Exhaust a job's generator synchronously and return its result (``on_progress(p)`` sees each report)."""
    try:
        while True:
            p = next(gen)
            if on_progress is not None:
                on_progress(p)
    except StopIteration as stop:
        return stop.value
