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


class MethodLine(ProgressLine):
    """The progress line of a method's generator (:class:`latent_focus.methods.Progress` reports)."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def drive(self, gen):
        """Exhaust ``gen``, showing each report; its result."""
        try:
            while True:
                self.update(next(gen))
        except StopIteration as stop:
            self.close()
            return stop.value

    def update(self, p) -> None:
        frac = p.done / p.total if p.total else 1.0
        self.show(f"{self.what} {self.bar(frac)} {100 * frac:3.0f}% eta {duration(self.eta(frac))} {p.message}", frac)


class TrainingLine(ProgressLine):
    """Training progress (:class:`latent_focus.train_loop.Progress`): step, loss, the last validation, ETA, device."""

    val = ""

    def update(self, p) -> None:
        if p.val:
            psnr = next((f" psnr {p.val[k]:.1f}" for k in ("val_psnr_interp", "val_psnr_deblur") if k in p.val), "")
            self.val = f" val {p.val['val_total']:.4f}{psnr}"
        frac = p.step / p.total
        self.show(f"step {p.step}/{p.total} {self.bar(frac)} loss {p.losses['total']:.4f}{self.val} | "
                  f"eta {duration(p.eta_s)} | {p.device}", frac, force=p.done)
