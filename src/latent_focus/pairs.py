"""Training pairs from focus series: a defocused plane and the same field's in-focus plane (supervised methods).

A :class:`FocusSeries` is one z-stack with a known in-focus plane; every plane within ``max_offset`` planes
of focus is an input whose target is the in-focus plane (the in-focus plane itself, with target itself, now
and then, so that sharp planes come back as they are). Both are normalised with the input plane's robust
percentiles, as at inference, so the network learns the change of contrast defocus brings too. Crops are
drawn at random positions with a random flip and quarter turn; planes smaller than the crop are mirrored out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .focus import find_focus
from .io import Normalizer, Stack


@dataclass
class FocusSeries:
    """One focus series: its stack, in-focus plane, sampling weight and the planes used as inputs."""

    stack: Stack
    focus: int
    weight: float = 1.0
    max_offset: int = 8
    name: str = ""
    inputs: list[int] = field(init=False)
    norms: list[Normalizer] = field(init=False)

    def __post_init__(self):
        n = self.stack.n_planes
        self.name = self.name or (Path(str(self.stack.source)).name if self.stack.source else "a stack")
        if not 0 <= self.focus < n:
            raise InputError(f"in-focus plane {self.focus} is out of range for {self.name} of {n} planes")
        if n < 2:
            raise InputError(f"{self.name} has one plane; training pairs need a focus series")
        if self.max_offset < 1:
            raise InputError(f"--max-offset must be at least 1; got {self.max_offset}")
        self.inputs = [k for k in range(n) if k != self.focus and abs(k - self.focus) <= self.max_offset]
        self.norms = [Normalizer.from_data(p) for p in self.stack.data]

    def record(self) -> dict:
        data = np.ascontiguousarray(self.stack.data, dtype=np.float32)
        return {"source": self.name, "shape": list(data.shape), "focus_plane": self.focus,
                "input_planes": len(self.inputs), "weight": round(self.weight, 4),
                "sha256": hashlib.sha256(data.tobytes()).hexdigest()}


def focus_series(stacks: list[Stack], focus: list[int] | None, max_offset: int, flag: str = "--focus",
                 stack_word: str = "stack") -> list[FocusSeries]:
    """A :class:`FocusSeries` of each stack: ``focus`` gives one in-focus plane for all or one per stack (default:
    each stack's sharpest plane); ``flag`` and ``stack_word`` name the command-line option in the message."""
    focus = focus or [find_focus(s.data) for s in stacks]
    if len(focus) == 1:
        focus = focus * len(stacks)
    if len(focus) != len(stacks):
        raise InputError(f"{flag} takes one plane, or one per {stack_word}; got {len(focus)} for {len(stacks)} "
                         "stacks")
    return [FocusSeries(s, f, max_offset=max_offset) for s, f in zip(stacks, focus)]


def _mirror_to(img: np.ndarray, crop: int) -> np.ndarray:
    h, w = img.shape
    if h >= crop and w >= crop:
        return img
    return np.pad(img, [(0, max(crop - h, 0)), (0, max(crop - w, 0))], mode="symmetric")


def sample_batch(series: list[FocusSeries], rng: np.random.Generator, batch: int, crop: int,
                 identity: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), each (batch, 1, crop, crop) float32 in the input planes' normalised units."""
    p = np.array([s.weight for s in series], dtype=float)
    picks = rng.choice(len(series), size=batch, p=p / p.sum())
    xs, ys = [], []
    for i in picks:
        s = series[i]
        k = s.focus if rng.random() < identity or not s.inputs else int(rng.choice(s.inputs))
        norm = s.norms[k]
        pair = np.stack([_mirror_to(norm.normalize(s.stack.data[k]), crop),
                         _mirror_to(norm.normalize(s.stack.data[s.focus]), crop)])
        h, w = pair.shape[1:]
        y0, x0 = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        pair = np.rot90(pair[:, y0:y0 + crop, x0:x0 + crop], int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            pair = pair[:, :, ::-1]
        xs.append(pair[0])
        ys.append(pair[1])
    return (np.ascontiguousarray(np.stack(xs)[:, None], dtype=np.float32),
            np.ascontiguousarray(np.stack(ys)[:, None], dtype=np.float32))
