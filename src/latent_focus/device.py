"""Choose the compute device by actually allocating on it: CUDA, then MPS, then CPU."""

from __future__ import annotations

import torch

from .errors import InputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _works(name: str) -> bool:
    try:
        torch.zeros(1, device=name) + 1
        return True
    except Exception:
        return False


def select_device(requested: str | None = "auto") -> torch.device:
    """Return a usable torch device.

    ``auto`` tries CUDA, then Apple MPS, then falls back to CPU. An explicit choice that cannot be
    used raises :class:`InputError` naming what is available.
    """
    requested = (requested or "auto").lower()
    if requested.split(":")[0] not in DEVICE_CHOICES:
        raise InputError(f"unknown device {requested!r}; pass one of {', '.join(DEVICE_CHOICES)}")
    if requested == "auto":
        if torch.cuda.is_available() and _works("cuda"):
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() and _works("mps"):
            return torch.device("mps")
        return torch.device("cpu")
    if not _works(requested):
        raise InputError(f"device {requested!r} is not usable on this machine; pass --device auto or cpu")
    return torch.device(requested)


def describe(device: torch.device) -> str:
    """Human-readable device name, e.g. ``cuda (NVIDIA H100)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'' if n == 1 else 's'})"
    return device.type
