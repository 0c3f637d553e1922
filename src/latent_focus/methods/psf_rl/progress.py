"""A one-line progress bar for the ``psf-rl`` commands (a line per 10 % when the stream is not a terminal)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, what: str, stream=None, width: int = 24):
        self.what, self.stream, self.width = what, stream or sys.stderr, width
        self.tty = self.stream.isatty()
        self.next_pct = 0
        self.t0 = time.perf_counter()
        self.phase = None

    def update(self, done: int, total: int, message: str = "", eta_s: float | None = None, phase: str = "") -> None:
        if phase != self.phase:  # a new phase starts its own line and its own 10 % marks
            if self.tty and self.phase is not None:
                self.stream.write("\n")
            self.phase, self.next_pct, self.t0 = phase, 0, time.perf_counter()
        frac = done / total if total else 1.0
        if eta_s is None:
            elapsed = time.perf_counter() - self.t0
            eta_s = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        filled = int(frac * self.width)
        eta = f"{int(eta_s) // 60}m{int(eta_s) % 60:02d}s"
        line = (f"{self.what}{' ' + phase if phase else ''} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{done}/{total} eta {eta} {message}")
        if self.tty:
            self.stream.write("\r" + line[:160])
        elif frac * 100 >= self.next_pct or done == total:
            self.stream.write(line + "\n")
            self.next_pct = (int(frac * 10) + 1) * 10
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
