"""The one resumable training loop every trainer runs.

A trainer builds its model, optimiser and sampler, then hands :func:`run_steps` a function that takes one
optimisation step. The loop counts steps (or minutes), validates and saves every so many steps, yields a
:class:`~latent_focus.progress.Progress` after each step, and when the generator is closed (Cancel) saves the
last completed step before it stops. :class:`TrainSettings` is what every trainer's recipe holds;
:func:`seeded` seeds a run, :func:`checkpoint_state` and :func:`resume` write and read what a checkpoint holds
(written atomically by :func:`latent_focus.models.modelfile.save_checkpoint`), so a run started again with the
same recipe continues where it stopped, with the same random streams.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .progress import Progress


@dataclass
class TrainSettings:
    """What every trainer's recipe holds besides its losses and data: the run's length, batch, learning rate,
    seed and device, and how often it validates and saves. Each trainer's config extends it with its own
    options (and defaults)."""

    steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-4
    seed: int = 0
    device: str = "auto"
    validate_every: int = 50
    checkpoint_every: int = 100


def optimizer_step(opt: torch.optim.Optimizer, terms: dict, step: int, what: str = "training") -> dict[str, float]:
    """Back-propagate ``terms["total"]`` and step ``opt``; the losses as floats (``step``: the step just taken).

    Raises RuntimeError when the loss is not finite, which a lower learning rate usually cures.
    """
    opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    opt.step()
    losses = {k: float(v.detach()) for k, v in terms.items()}
    if not math.isfinite(losses["total"]):
        raise RuntimeError(f"{what} diverged at step {step} (loss is {losses['total']}); lower the learning rate")
    return losses


RELATIVE_FLOOR = 1e-4  # reference power (normalised units) below which errors count as absolute


def relative_squared_error(error: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of each sample's squared ``error`` divided by the power of its ``reference`` (plus
    :data:`RELATIVE_FLOOR`): each sample counts by how much of its distance to the target remains, as PSNR counts it.
    """
    power = (reference ** 2).flatten(1).mean(1)
    return ((error ** 2).flatten(1).mean(1) / (power + RELATIVE_FLOOR)).mean()


def cosine_lr(lr: float, step: int, steps: int) -> float:
    """Cosine decay from ``lr`` at step 0 to ``lr / 20`` at ``steps``."""
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0))))


def seeded(seed) -> np.random.Generator:
    """Seed torch with ``seed`` and return the run's numpy generator."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def checkpoint_state(model: torch.nn.Module, opt: torch.optim.Optimizer, history: list, step: int,
                     rng: np.random.Generator | None = None, scheduler=None, **key) -> dict:
    """What a checkpoint holds: weights, optimiser (and scheduler), random streams, history, step, and ``key``
    (the recipe or signature a resumed run must match)."""
    state = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "optimizer": opt.state_dict(),
             "torch_rng": torch.get_rng_state(), "history": history, "step": step, **key}
    if rng is not None:
        state["numpy_rng"] = rng.bit_generator.state
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    return state


def resume(ckpt: dict | None, model: torch.nn.Module, opt: torch.optim.Optimizer,
           rng: np.random.Generator | None = None, scheduler=None) -> tuple[list, int]:
    """Load ``ckpt`` (from :func:`checkpoint_state`; None: a fresh run) into the run; its history and step."""
    if ckpt is None:
        return [], 0
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    if "torch_rng" in ckpt:
        torch.set_rng_state(ckpt["torch_rng"])
    if rng is not None:
        rng.bit_generator.state = ckpt["numpy_rng"]
    if scheduler is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    return list(ckpt["history"]), int(ckpt["step"])


def run_steps(take_step: Callable[[int], tuple[dict, dict]], history: list, device: str, *, start: int = 0,
              steps: int | None = None, minutes: float | None = None, validate: Callable[[], dict] | None = None,
              validate_every: int = 50, save: Callable[[int], str | None] | None = None,
              checkpoint_every: int = 100, summary: tuple[str, ...] = ("total",)) -> Iterator[Progress]:
    """Run ``take_step(step)`` from step ``start`` until ``steps`` (or ``minutes`` of work, whichever comes first).

    ``take_step`` takes one optimisation step from the 0-based ``step`` and returns its losses and any other values
    for the history. Every ``validate_every`` steps and at the end ``validate()`` adds its metrics; every
    ``checkpoint_every`` steps and at the end ``save(step)`` writes the run (its return is the report's
    ``checkpoint``). Each step appends ``{"step", losses, values, metrics}`` to ``history`` and yields a
    :class:`Progress` (in steps) whose message shows the ``summary`` keys of the step's losses and of the latest
    validation. Closing the generator saves the last completed step (when ``save`` is given) and stops.
    """
    if steps is None and minutes is None:
        raise ValueError("run_steps needs steps or minutes")
    budget = math.inf if minutes is None else 60.0 * minutes
    step, last_saved, elapsed, latest = start, start, 0.0, {}
    t0 = time.perf_counter()
    try:
        while (steps is None or step < steps) and elapsed < budget:
            losses, values = take_step(step)
            step += 1
            elapsed = time.perf_counter() - t0
            done = step == steps or elapsed >= budget
            val = validate() if validate is not None and (step % validate_every == 0 or done) else None
            history.append({"step": step, **losses, **values, **(val or {})})
            latest.update(val or {})
            saved = None
            if save is not None and (step % checkpoint_every == 0 or done):
                saved, last_saved = save(step), step
            rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
            total = steps if minutes is None else step + int(max(0.0, budget - elapsed) * rate)
            total = total if steps is None else min(total, steps)
            shown = {**latest, **losses}
            message = " ".join(f"{'loss' if k == 'total' else k} {shown[k]:.4g}" for k in summary if k in shown)
            yield Progress(step, total, message, "step",
                           losses=losses, val=val, elapsed_s=elapsed, eta_s=0.0 if done else (total - step) / rate,
                           device=device, checkpoint=saved, finished=done)
    except GeneratorExit:
        if save is not None and step > last_saved:
            save(step)  # cancelled: keep the weights of the last completed step
        raise
