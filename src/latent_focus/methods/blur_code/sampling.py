"""Training pairs from z-stacks: a field at two defocus levels (same identity), two fields at one defocus (same blur).

A field is a crop of one stack at one place (with one rotation / flip); its two planes ``a`` and ``b``
lie on one side of the in-focus plane (which belongs to both sides), ``a`` nearer focus than ``b``, so
their identity is the same and ``b`` is the blurrier. Fields come in couples (0, 1), (2, 3), ...:

* most couples are two places of one stack at the same distances from focus (on either side where the
  stack has a plane at the mirrored distance): both their ``a`` planes and both their ``b`` planes share
  their blur;
* the rest (``focus_pairs``) take plane ``a`` = the in-focus plane of two different stacks, so that the
  in-focus blur code is one code across optics, samples and modalities; only their ``a`` planes share blur.

Blur is "the distance from focus": ``|z - z_focus|`` in micrometres where the stack records z, else in planes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import InputError
from ...focus import find_focus
from ...io import Normalizer, Stack, check_plane_index, check_planes, plane_positions


@dataclass
class Source:
    """One training stack: normalised planes, its focus plane and the planes of each side of focus."""

    data: np.ndarray  # (z, y, x), normalised
    focus: int
    level: np.ndarray  # distance of each plane from focus
    sides: list[list[int]]  # each side's planes (focus first) ordered by distance; sides with >= 2 planes
    sha256: str
    name: str

    def mirror(self, plane: int, side: list[int]) -> int | None:
        """The plane of ``side`` at the same distance from focus as ``plane``, if there is one."""
        tol = 1e-3 * max(float(np.abs(np.diff(self.level[side])).max(initial=1.0)), 1e-9)
        for p in side:
            if abs(self.level[p] - self.level[plane]) <= tol:
                return p
        return None


@dataclass
class Batch:
    """``x``: (2, N, 1, s, s) planes ``a`` and ``b`` of N fields; ``partner[i]``: the field coupled with ``i``;
    ``same_blur_b[i]``: whether field ``i``'s ``b`` plane shares its blur with its partner's."""

    x: torch.Tensor
    partner: torch.Tensor
    same_blur_b: torch.Tensor

    def to(self, device) -> "Batch":
        return Batch(self.x.to(device), self.partner.to(device), self.same_blur_b.to(device))


def prepare_sources(stacks, focus=None, percentiles=(0.1, 99.9), crop: int = 96) -> list[Source]:
    """Normalise each stack and find its sides of focus (``focus``: one plane index per stack, or None to
    take the sharpest plane by the variance of the Laplacian)."""
    if focus is not None and len(focus) not in (len(stacks),):
        raise InputError(f"--focus takes one plane index per training stack ({len(stacks)}); got {len(focus)}")
    sources = []
    for i, s in enumerate(stacks):
        stack = s if isinstance(s, Stack) else Stack(np.asarray(s, dtype=np.float32))
        name = stack.source or f"array {i}"
        data = check_planes(np.asarray(stack.data, dtype=np.float32), f"training stack {i} ({name})")
        if min(data.shape[1:]) < crop:
            raise InputError(f"training stack {i} ({name}) has {data.shape[1]}x{data.shape[2]} px planes; pass "
                             f"planes of at least {crop}x{crop} or a smaller --crop")
        f = find_focus(data) if focus is None else check_plane_index(int(focus[i]), len(data))
        pos = plane_positions(len(data), stack.z_um)
        rel = pos - pos[f]
        sides = []
        for sign in (-1, 1):
            side = sorted([f] + [p for p in range(len(data)) if sign * rel[p] > 0], key=lambda p: abs(rel[p]))
            if len(side) >= 2:
                sides.append(side)
        if not sides:
            raise InputError(f"training stack {i} ({name}) has a single plane; pass z-stacks of at least two planes")
        sha = hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()
        norm = Normalizer.from_data(data, tuple(percentiles))
        sources.append(Source(norm.normalize(data).astype(np.float32), f, np.abs(rel), sides, sha, name))
    if not sources:
        raise InputError("no training stacks given; pass at least one z-stack")
    return sources


def split_validation(sources: list[Source], fraction: float) -> tuple[list[Source], list[Source]]:
    """Every ``round(1/fraction)``-th stack held out for validation, when at least five stacks are given."""
    if fraction <= 0 or len(sources) < 5:
        return sources, []
    every = max(2, int(round(1 / fraction)))
    val = [s for i, s in enumerate(sources) if i % every == every - 1]
    return [s for i, s in enumerate(sources) if i % every != every - 1], val


def _places(source: Source, crop: int, rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    """``n`` crop corners, each new one as far as possible (up to half a crop) from the previous ones."""
    h, w = source.data.shape[1:]
    out = [(int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1)))]
    while len(out) < n:
        best, best_gap = None, -1
        for _ in range(16):
            y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
            gap = min(max(abs(y - py), abs(x - px)) for py, px in out)
            if gap > best_gap:
                best, best_gap = (y, x), gap
            if gap >= crop // 2:
                break
        out.append(best)
    return out


def _field(source: Source, planes: tuple[int, int], place: tuple[int, int], crop: int,
           rng: np.random.Generator) -> np.ndarray:
    y, x = place
    patch = np.rot90(source.data[list(planes), y:y + crop, x:x + crop], int(rng.integers(4)), axes=(1, 2))
    return np.ascontiguousarray(patch[:, :, ::-1] if rng.integers(2) else patch)


def _same_stack_couple(source: Source, crop: int, rng: np.random.Generator):
    side = source.sides[int(rng.integers(len(source.sides)))]
    a, b = sorted(int(p) for p in rng.choice(len(side), 2, replace=False))  # positions: a nearer focus
    a, b = side[a], side[b]
    planes2 = (a, b)
    others = [s for s in source.sides if s is not side]
    if others and rng.integers(2):  # the second place on the other side, at the same distances
        ma, mb = source.mirror(a, others[0]), source.mirror(b, others[0])
        if ma is not None and mb is not None and ma != mb:
            planes2 = (ma, mb)
    p1, p2 = _places(source, crop, rng, 2)
    return [_field(source, (a, b), p1, crop, rng), _field(source, planes2, p2, crop, rng)], True


def _focus_couple(s1: Source, s2: Source, crop: int, rng: np.random.Generator):
    fields = []
    for src in (s1, s2):
        side = src.sides[int(rng.integers(len(src.sides)))]
        b = int(side[int(rng.integers(1, len(side)))])
        fields.append(_field(src, (src.focus, b), _places(src, crop, rng, 1)[0], crop, rng))
    return fields, False


def sample_batch(sources: list[Source], fields: int, crop: int, rng: np.random.Generator,
                 focus_pairs: float = 0.25, focus_only: bool = False) -> Batch:
    """A :class:`Batch` of ``fields`` fields (rounded up to couples); see the module docstring.

    ``focus_only`` makes every couple a focus couple (plane ``a`` in focus), as the validation batch is.
    """
    crops, same = [], []
    for _ in range(max(1, (fields + 1) // 2)):
        if focus_only or (len(sources) > 1 and rng.random() < focus_pairs):
            if len(sources) > 1:
                i, j = (int(k) for k in rng.choice(len(sources), 2, replace=False))
            else:
                i = j = 0
            pair, shared = _focus_couple(sources[i], sources[j], crop, rng)
        else:
            pair, shared = _same_stack_couple(sources[int(rng.integers(len(sources)))], crop, rng)
        crops += pair
        same += [shared, shared]
    x = torch.from_numpy(np.stack(crops, axis=1)[:, :, None])
    partner = torch.arange(len(crops)) ^ 1
    return Batch(x, partner, torch.tensor(same))
