"""Adapt a model to one z-stack: a short self-supervised fine-tune on the stack's own planes.

The stack's sharper planes are the targets for its blurrier ones. Every triplet ``(a, b, c)`` of planes on
one side of focus, ``a`` the sharpest, trains the model's own losses
(:func:`latent_focus.methods.latent.losses.triplet_losses`):
reconstruction, blur synthesis of ``b`` from ``a`` and ``c`` (Eq. 1), the direct latent term (Eq. 4) and the
deblurring term, ``a`` decoded from Eq. 2's extrapolation of ``b`` and ``c``. The alpha of a triplet comes
from the planes' positions only, so no in-focus ground truth is needed: only which side of the sharpest
plane each plane lies on (:func:`latent_focus.focus.find_focus`, or ``focus=``).

:func:`adapt` is a generator that yields :class:`latent_focus.progress.Progress` after every step and stops
after about ``minutes`` of work; closing it cancels, and nothing is written. At the end it writes a normal
model folder whose :class:`~latent_focus.models.ModelCard` says it was adapted, to which stack, and from which
model; ``latent-focus adapt`` and the napari panel's "Adapt to this stack" both drive it.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ...device import describe, select_device
from ...errors import InputError
from ...focus import find_focus, triplets_for
from ...io import Normalizer, Stack, check_plane_index, check_planes
from ...models import PRESETS, find_model, load_model, read_card
from ...models.modelfile import save_model
from ...models.store import SHIPPED_DIR
from ...progress import Progress
from ...train_loop import optimizer_step, run_steps, seeded
from .losses import triplet_losses

DEFAULT_MINUTES = 2.0


@dataclass(frozen=True)
class AdaptSettings:
    """The fine-tune's recipe (stored in the adapted model's card)."""

    batch_size: int = 8
    crop: int = 96
    lr: float = 3e-4
    extrapolation: float = 1.0  # weight of the deblurring term
    seed: int = 0


def adapt(stack: Stack | np.ndarray, output: str | os.PathLike, model: str | os.PathLike | None = None,
          minutes: float = DEFAULT_MINUTES, *, steps: int | None = None, focus: int | None = None,
          planes=None, rows: tuple[int, int] | None = None, device: str = "auto",
          settings: AdaptSettings = AdaptSettings(), overwrite: bool = False) -> Iterator[Progress]:
    """Fine-tune ``model`` on the planes of ``stack``; yield a :class:`~latent_focus.progress.Progress` per step.

    Parameters
    ----------
    stack : Stack or array (z, y, x)
        The z-stack to adapt to (at least three planes on one side of its sharpest plane).
    output : path
        Model folder to write when the budget is spent; it must not exist unless ``overwrite``.
    model : model name or folder, optional
        The model to start from (default: the shipped default).
    minutes : float
        Wall-clock budget of the fine-tune (about 2 min on a 2-core CPU by default; a GPU does more steps).
    steps : int, optional
        Stop after this many steps, if earlier than the budget (reproducible runs, tests).
    focus : int, optional
        The in-focus plane; by default the sharpest (:func:`~latent_focus.focus.find_focus`).
    planes : sequence of int, optional
        Only these planes take part (default: all). Leaving planes out lets them be scored afterwards.
    rows : (start, stop), optional
        Only these rows of each plane take part (default: all).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    settings : AdaptSettings
        Batch size, crop, learning rate, loss weights and seed.
    overwrite : bool
        Replace an existing ``output`` folder.

    Closing the generator cancels the fine-tune; nothing is written then. Bad input raises
    :class:`~latent_focus.errors.InputError` before any work.
    """
    stack = stack if isinstance(stack, Stack) else Stack(np.asarray(stack, dtype=np.float32))
    data = check_planes(np.asarray(stack.data, dtype=np.float32), "the stack to adapt to")
    if not (isinstance(minutes, (int, float)) and math.isfinite(minutes) and minutes > 0):
        raise InputError(f"the adaptation budget must be a positive number of minutes; got {minutes!r}. "
                         "Pass e.g. --minutes 2")
    if steps is not None and steps < 1:
        raise InputError(f"steps must be at least 1; got {steps}")
    base_path = find_model(model)
    output = _check_output(output, base_path, overwrite)
    focus = find_focus(data) if focus is None else check_plane_index(focus, len(data))
    keep = sorted({check_plane_index(int(p), len(data)) for p in (range(len(data)) if planes is None else planes)})
    triplets = [t for t in triplets_for(len(data), stack.z_um, focus, "all") if set(t[:3]) <= set(keep)]
    if not triplets:
        raise InputError(f"{stack.source or 'the stack'} has no three planes on one side of its in-focus plane "
                         f"{focus} among planes {keep}; adaptation needs a z-stack with at least three planes "
                         "on one side of focus")
    y0, y1 = (0, data.shape[1]) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= y0 < y1 <= data.shape[1]:
        raise InputError(f"rows {rows} lie outside the planes' {data.shape[1]} rows")
    preset = read_card(base_path).preset
    if PRESETS[preset].family != "autoencoder":
        raise InputError(f"{base_path.name} (preset {preset}) is no autoencoder of the latent method, the only "
                         "models adaptation fine-tunes; pass --model default or another one")
    dev = select_device(device)
    net, card = load_model(base_path, dev)
    crop = min(settings.crop, y1 - y0, data.shape[2]) // net.multiple * net.multiple
    if crop < 32:
        raise InputError(f"the planes (rows {y0}-{y1}, {data.shape[2]} columns) are too small to adapt to; "
                         "pass planes of at least 32 x 32 pixels")
    region = Normalizer.from_data(data, card.percentiles).normalize(data[:, y0:y1])
    regularization = card.training.get("recipe", {}).get("regularization", "direct")
    rng = seeded(settings.seed)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    net.train()
    use_amp, dev_name = dev.type == "cuda", describe(dev)

    def take_step(step: int):
        batch, alpha = _sample(region, triplets, crop, settings.batch_size, rng)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            terms = triplet_losses(net, batch.to(dev), alpha.to(dev), regularization, "l1", settings.extrapolation)
        return optimizer_step(opt, terms, step + 1, "adaptation"), {}

    last = None
    for last in run_steps(take_step, [], dev_name, steps=steps, minutes=minutes):
        yield last
    step, elapsed = last.done, last.elapsed_s
    net.eval()
    adapted = {"from": card.name or base_path.name, "from_weights_sha256": card.weights_sha256,
               "stack": stack.source or "array", "focus": focus, "planes": keep, "rows": [y0, y1],
               "minutes": minutes, "seconds": round(elapsed, 1), "steps": step, "triplets": len(triplets)}
    new_card = replace(
        card, name=output.name,
        description=f"{adapted['from']} adapted to {Path(adapted['stack']).name} ({step} steps, {elapsed:.0f} s)",
        training={"recipe": {**asdict(settings), "regularization": regularization, "minutes": minutes},
                  "steps_done": step, "device": dev_name,
                  "fine_tuned_from": {"name": adapted["from"], "weights_sha256": card.weights_sha256},
                  "data": [{"source": adapted["stack"], "planes": len(keep), "shape": list(data.shape),
                            "triplets": len(triplets),
                            "sha256": hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()}]},
        deblur_strength=_inherited(card, adapted["from"]), training_command="", training_data={}, evaluation={},
        seed=settings.seed, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extra={**card.extra, "adapted": adapted})
    _write(output, net, new_card, overwrite)


def _sample(region: np.ndarray, triplets: list, crop: int, batch_size: int, rng: np.random.Generator):
    """(3, B, 1, crop, crop) crops of random triplets, rotated and flipped at random, and their (B,) alphas."""
    crops, alphas = [], []
    for _ in range(batch_size):
        a, b, c, alpha = triplets[rng.integers(len(triplets))]
        y = rng.integers(0, region.shape[1] - crop + 1)
        x = rng.integers(0, region.shape[2] - crop + 1)
        patch = np.rot90(region[[a, b, c], y:y + crop, x:x + crop], int(rng.integers(4)), axes=(1, 2))
        crops.append(np.ascontiguousarray(patch[:, :, ::-1] if rng.integers(2) else patch))
        alphas.append(alpha)
    return torch.from_numpy(np.stack(crops, axis=1)[:, :, None]), torch.tensor(alphas, dtype=torch.float32)


def _inherited(card, name: str) -> dict | None:
    """The base model's calibrated strength, marked as inherited (None when it has none)."""
    if not card.deblur_strength:
        return None
    return {"value": card.strength, "inherited_from": name}


def _check_output(output, base: Path, overwrite: bool) -> Path:
    """``output`` as a Path a model may be written to: never the base model or a shipped model."""
    out = Path(output).expanduser()
    if out.resolve() == base.resolve():
        raise InputError(f"{out} is the model being adapted; write the adapted model to a new folder")
    if out.resolve().is_relative_to(SHIPPED_DIR.resolve()):
        raise InputError(f"{out} is inside the shipped models; write the adapted model elsewhere")
    if out.exists() and not (overwrite and out.is_dir()):
        raise InputError(f"{out} already exists; choose another output or pass --overwrite")
    return out


def _write(output: Path, net, card, overwrite: bool) -> None:
    """Write the model folder beside ``output`` first, then move it into place (no half-written model)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        save_model(tmp, net, card)
        if output.exists() and overwrite:
            shutil.rmtree(output)
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
