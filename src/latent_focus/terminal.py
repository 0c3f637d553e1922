"""Progress on a terminal: one line redrawn in place, or in a log a line every few percent."""

from __future__ import annotations

import sys
import time

from .progress import Progress


def duration(seconds: float) -> str:
    """``75`` -> ``"1m15s"``."""
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressLine:
    """Draws :class:`~latent_focus.progress.Progress` reports as one line: redrawn in place on a terminal;
    elsewhere written every ``every`` percent, at a job's last report and when forced. A new ``phase`` starts
    a new line with its own marks."""

    def __init__(self, what: str = "", stream=None, width: int = 24, every: int = 10):
        self.what = what
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width, self.every = width, every
        self.phase: str | None = None
        self.next_pct, self.t0 = 0, time.perf_counter()

    def drive(self, gen):
        """Exhaust the job ``gen``, drawing each report; its result."""
        try:
            while True:
                self.update(next(gen))
        except StopIteration as stop:
            self.close()
            return stop.value

    def update(self, p: Progress, force: bool = False) -> None:
        if p.phase != self.phase:
            if self.phase is not None:
                self.close()
            self.phase, self.next_pct, self.t0 = p.phase, 0, time.perf_counter()
        frac = p.fraction
        count = f"{p.unit} {p.done}/{p.total}" if p.unit else f"{100 * frac:3.0f}%"
        eta = p.eta_s if p.eta_s is not None else self._eta(frac)
        filled = int(frac * self.width)
        line = " ".join(x for x in (self.what, p.phase, f"[{'#' * filled}{'.' * (self.width - filled)}]", count,
                                    p.message, f"| eta {duration(eta)}", p.device and f"| {p.device}") if x)
        self._show(line, frac, force or p.finished)

    def _eta(self, frac: float) -> float:
        """Seconds left at the rate so far, ``frac`` of the work being done."""
        return (time.perf_counter() - self.t0) * (1 - frac) / frac if frac > 0 else 0.0

    def _show(self, line: str, frac: float, force: bool) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + line[:160])
        elif 100 * frac >= self.next_pct or force:
            self.stream.write(line + "\n")
            self.next_pct = (int(100 * frac / self.every) + 1) * self.every
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
