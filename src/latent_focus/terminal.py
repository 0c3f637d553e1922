"""Progress on a terminal: one line redrawn in place, or in a log a line every few percent."""

from __future__ import annotations

import sys
import time


def duration(seconds: float) -> str:
    """``75`` -> ``"1m15s"``."""
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressLine:
    """A progress line: redrawn in place on a terminal; elsewhere written every ``every`` percent and when forced."""

    def __init__(self, stream=None, width: int = 24, every: int = 10):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width, self.every = width, every
        self.restart()

    def restart(self) -> None:
        """Start the percent marks and the clock again (a new phase of the work)."""
        self.next_pct, self.t0 = 0, time.perf_counter()

    def eta(self, frac: float) -> float:
        """Seconds left at the rate so far, ``frac`` of the work being done."""
        return (time.perf_counter() - self.t0) * (1 - frac) / frac if frac > 0 else 0.0

    def bar(self, frac: float) -> str:
        filled = int(frac * self.width)
        return f"[{'#' * filled}{'.' * (self.width - filled)}]"

    def show(self, line: str, frac: float, force: bool = False) -> None:
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
