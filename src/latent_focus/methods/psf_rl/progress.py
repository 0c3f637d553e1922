"""The progress line of the ``psf-rl`` commands: phases (simulate, train, ...) each with their own marks."""

from __future__ import annotations

from ...terminal import ProgressLine, duration


class ProgressBar(ProgressLine):
    def __init__(self, what: str):
        super().__init__()
        self.what, self.phase = what, None

    def update(self, done: int, total: int, message: str = "", eta_s: float | None = None, phase: str = "") -> None:
        if phase != self.phase:  # a new phase starts its own line and its own 10 % marks
            if self.phase is not None:
                self.close()
            self.phase = phase
            self.restart()
        frac = done / total if total else 1.0
        eta = self.eta(frac) if eta_s is None else eta_s
        self.show(f"{self.what}{' ' + phase if phase else ''} {self.bar(frac)} {done}/{total} eta {duration(eta)} "
                  f"{message}", frac, force=done == total)
