"""A network loaded from its model folder for inference: card, device, a lock that serialises its use, and the
CPU copy that a call falls back to when the GPU has no memory left (the loaded network stays where it is)."""

from __future__ import annotations

import copy
import threading
from functools import cached_property

import torch

from ..device import describe, select_device
from ..io import Normalizer
from .modelfile import load_model
from .store import find_model


class LoadedNetwork:
    """A model folder (``model``, default :attr:`default`) loaded on ``device``; subclasses say what they accept."""

    default = ""  # the shipped model used without --model

    def __init__(self, model: str | None = None, device: str = "auto"):
        self.device = select_device(device)
        self.model_path = find_model(model or self.default)
        self.model, self.card = load_model(self.model_path, self.device)
        self.check_model()
        self.lock = threading.RLock()

    def check_model(self) -> None:
        """Raise :class:`~latent_focus.errors.InputError` when :attr:`model` is not what the subclass runs."""

    @property
    def name(self) -> str:
        return self.card.name or self.model_path.name

    @property
    def device_name(self) -> str:
        return describe(self.device)

    def normalizer(self, plane) -> Normalizer:
        """Intensity normalisation of ``plane`` with the model's percentiles."""
        return Normalizer.from_data(plane, self.card.percentiles)

    @cached_property
    def _cpu_model(self) -> torch.nn.Module:
        """The network on the CPU, made once, for calls that fall back there (the GPU is full)."""
        return copy.deepcopy(self.model).cpu()


def unless_out_of_memory(fn):
    """``fn()`` without autograd; None on a CUDA out-of-memory error (the caller shrinks its work or moves on)."""
    try:
        with torch.inference_mode():
            return fn()
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return None
