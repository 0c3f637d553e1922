"""What every trainer shares: the report it yields after each step, and one checked optimiser step."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


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


@dataclass
class Progress:
    """One report from the training loop."""

    step: int
    total: int
    losses: dict[str, float]
    val: dict[str, float] | None
    elapsed_s: float
    eta_s: float
    device: str
    checkpoint: str | None = None
    done: bool = False
