"""Training on z-stack triplets with the paper's regularizations, as a generator of progress reports.

``train`` yields a :class:`Progress` after every step; the command line prints it as a progress bar
and the napari training dock plots it. Stopping the iteration (``close()``) cancels between steps and
keeps the last good checkpoint. Runs are seeded and reproducible, and resume from their checkpoint.
"""

from __future__ import annotations

import hashlib
import math
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
from ...metrics import psnr
from ...models import ModelCard, build_model, find_model, load_model
from ...models.modelfile import checkpoint_to_resume, save_checkpoint, save_model
from ...progress import Progress
from ...train_loop import TrainSettings, checkpoint_state, optimizer_step, run_steps, seeded
from ...train_loop import resume as resume_run
from .losses import triplet_losses

REGULARIZATIONS = ("baseline", "indirect", "direct")
#: the best fine-tuning recipe measured in the README (on a field the model never saw): the training dock's
#: defaults, over :class:`TrainConfig`'s
FINE_TUNE_RECIPE = {"extrapolation": 3.0, "steps": 1200}


@dataclass
class TrainConfig(TrainSettings):
    """Recipe of one training run (stored in the model card)."""

    preset: str = "compact"
    regularization: str = "direct"
    loss: str = "l1"
    epochs: float | None = None
    crop: int = 128
    val_fraction: float = 0.15
    percentiles: tuple[float, float] = (0.1, 99.9)
    triplets: str = "auto"
    extrapolation: float = 0.0
    relative_latent: bool = False

    def check(self) -> None:
        if self.regularization not in REGULARIZATIONS:
            raise InputError(f"unknown regularization {self.regularization!r}; "
                             f"pass one of {', '.join(REGULARIZATIONS)}")
        if self.loss not in ("l1", "mse"):
            raise InputError(f"unknown loss {self.loss!r}; pass l1 or mse")
        if self.steps < 1 and not self.epochs:
            raise InputError("steps must be at least 1")
        if self.batch_size < 1 or self.crop < 16 or self.lr <= 0:
            raise InputError("batch size must be >= 1, crop >= 16 and learning rate > 0")
        if not (math.isfinite(self.extrapolation) and self.extrapolation >= 0):
            raise InputError(f"extrapolation weight must be >= 0; got {self.extrapolation}")
        if self.relative_latent and self.regularization != "direct":
            raise InputError("a relative latent term needs direct regularization; pass --regularization direct")



@dataclass
class _Source:
    data: np.ndarray  # normalised (z, y, x)
    triplets: list[tuple[int, int, int, float]]
    train_rows: int
    sha256: str
    name: str
    weight: float = 1.0


def _prepare(stacks, config: TrainConfig, focus=None, weights=None) -> list[_Source]:
    focus = [None] * len(stacks) if focus is None else list(focus)
    weights = [1.0] * len(stacks) if weights is None else [float(w) for w in weights]
    if len(focus) != len(stacks) or len(weights) != len(stacks):
        raise InputError(f"pass one in-focus plane and one weight per training stack ({len(stacks)} stacks)")
    if any(not (math.isfinite(w) and w > 0) for w in weights):
        raise InputError("training stack weights must be positive numbers")
    sources = []
    for i, s in enumerate(stacks):
        stack = s if isinstance(s, Stack) else Stack(np.asarray(s, dtype=np.float32))
        data = check_planes(np.asarray(stack.data, dtype=np.float32), f"training stack {i}")
        if data.shape[1] < config.crop or data.shape[2] < config.crop:
            raise InputError(f"training stack {i} planes are {data.shape[1:]} px; pass planes of at least "
                             f"{config.crop}x{config.crop} or a smaller crop size")
        in_focus = find_focus(data) if focus[i] is None else check_plane_index(focus[i], len(data))
        trips = triplets_for(len(data), stack.z_um, in_focus, config.triplets)
        if not trips:
            raise InputError(f"training stack {i} ({stack.source or 'array'}) has no plane triplet (a, b, c) "
                             "on one side of focus; pass a stack with at least three planes on one side")
        norm = Normalizer.from_data(data, config.percentiles)
        rows = int(round(data.shape[1] * (1 - config.val_fraction)))
        if data.shape[1] - rows < config.crop:
            rows = data.shape[1]  # too small to hold out a validation band
        sources.append(_Source(norm.normalize(data), trips, rows,
                               hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest(),
                               stack.source or f"array {i}", weights[i]))
    if not sources:
        raise InputError("no training stacks given; pass at least one z-stack")
    return sources


def _crop(src: _Source, t: tuple[int, int, int, float], y: int, x: int, size: int, k: int, flip: bool) -> np.ndarray:
    patch = src.data[list(t[:3]), y:y + size, x:x + size]
    patch = np.rot90(patch, k, axes=(1, 2))
    return np.ascontiguousarray(patch[:, :, ::-1] if flip else patch)


def _batch(crops: list[np.ndarray], alphas: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.stack(crops, axis=1)[:, :, None]), torch.tensor(alphas, dtype=torch.float32)


def _sample_batch(sources: list[_Source], config: TrainConfig, rng: np.random.Generator):
    """(3, B, 1, crop, crop) tensor of a, b, c crops from the training band, and the (B,) alphas."""
    crops, alphas = [], []
    p = np.array([s.weight for s in sources])
    for _ in range(config.batch_size):
        src = sources[rng.choice(len(sources), p=p / p.sum())]
        t = src.triplets[rng.integers(len(src.triplets))]
        y = rng.integers(0, src.train_rows - config.crop + 1)
        x = rng.integers(0, src.data.shape[2] - config.crop + 1)
        crops.append(_crop(src, t, y, x, config.crop, int(rng.integers(4)), bool(rng.integers(2))))
        alphas.append(t[3])
    return _batch(crops, alphas)


def _validation_batch(sources: list[_Source], config: TrainConfig):
    """Fixed crops from the held-out bottom band of each stack (up to 16 triplets, centre column)."""
    crops, alphas = [], []
    for src in sources:
        if src.train_rows >= src.data.shape[1]:
            continue
        y = src.data.shape[1] - config.crop
        x = (src.data.shape[2] - config.crop) // 2
        for t in src.triplets[:16]:
            crops.append(_crop(src, t, y, x, config.crop, 0, False))
            alphas.append(t[3])
    return _batch(crops, alphas) if crops else None


def _losses(model, x: torch.Tensor, alpha: torch.Tensor, config: TrainConfig,
            outputs: dict | None = None) -> dict[str, torch.Tensor]:
    """:func:`triplet_losses` with the loss settings of ``config``."""
    return triplet_losses(model, x, alpha, config.regularization, config.loss, config.extrapolation,
                          config.relative_latent, outputs)


@torch.no_grad()
def _validate(model, batch, config: TrainConfig, device: torch.device) -> dict[str, float]:
    model.eval()
    x, alpha = batch[0].to(device), batch[1].to(device)
    decoded = {}
    terms = _losses(model, x, alpha, config, outputs=decoded)
    model.train()
    out = {f"val_{k}": float(v) for k, v in terms.items()}
    out["val_psnr_interp"] = float(np.mean([psnr(t.cpu().numpy(), p.cpu().numpy(), data_range=1.0)
                                            for t, p in zip(x[1, :, 0], decoded["interp"][:, 0])]))
    return out


def train(stacks, output: str | Path | None = None, config: TrainConfig | None = None,
          init: str | Path | None = None, resume: bool = True, overwrite: bool = False,
          focus=None, weights=None) -> Iterator[Progress]:
    """Train an autoencoder on triplets from ``stacks``; yields a :class:`Progress` after each step.

    Parameters
    ----------
    stacks : list of Stack or (z, y, x) arrays
        Training z-stacks; planes are normalised per stack.
    output : path, optional
        Model folder to write (weights, card, checkpoint). Nothing is written when None.
    config : TrainConfig
        The recipe. ``epochs``, when set, overrides ``steps``.
    init : model name or folder, optional
        Fine-tune from these weights (their preset wins over ``config.preset``).
    resume : bool
        Continue from ``output``'s checkpoint when one exists for the same recipe.
    overwrite : bool
        Replace an existing ``output`` folder that cannot be resumed (else :class:`InputError`).
    focus : list of int or None, optional
        In-focus plane of each stack (None: the sharpest by the variance of the Laplacian).
    weights : list of float, optional
        How often each stack is drawn, relative to the others (default: all alike).
    """
    config = replace(config or TrainConfig())  # the caller's config is never written to
    config.check()
    sources = _prepare(stacks, config, focus, weights)
    device = select_device(config.device)
    rng = seeded(config.seed)
    if init is not None:
        init_path = find_model(init)
        model, init_card = load_model(init_path, device)
        config.preset = init_card.preset
        parent = {"name": init_card.name or init_path.name, "weights_sha256": init_card.weights_sha256}
        strength = init_card.strength if init_card.deblur_strength else None
    else:
        model, parent, strength = build_model(config.preset).to(device), None, None
    if config.epochs:
        crops_per_plane = max(1, (sources[0].train_rows * sources[0].data.shape[2]) // config.crop ** 2)
        per_epoch = sum(len(s.triplets) for s in sources) * crops_per_plane
        config.steps = max(1, math.ceil(config.epochs * per_epoch / config.batch_size))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    recipe = _recipe(config, sources)
    ckpt = checkpoint_to_resume(output, lambda c: _same_recipe(c.get("recipe"), recipe), overwrite, resume)
    history, start = resume_run(ckpt, model, opt, rng)
    val_batch = _validation_batch(sources, config)
    use_amp = device.type == "cuda"
    dev_name = describe(device)
    model.train()

    def take_step(step: int):
        x, alpha = _sample_batch(sources, config, rng)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            terms = _losses(model, x.to(device), alpha.to(device), config)
        return optimizer_step(opt, terms, step + 1), {}

    def save(step: int) -> str | None:
        if output is None:
            return None
        card = _card(config, sources, parent, dev_name, step)
        if strength is not None:  # a fine-tuned model keeps its parent's until calibrated anew
            card.deblur_strength = {"value": strength, "inherited_from": parent["name"]}
        save_model(output, model, card, history)
        save_checkpoint(output, checkpoint_state(model, opt, history, step, rng, recipe=recipe))
        return str(output)

    yield from run_steps(take_step, history, dev_name, start=start, steps=config.steps,
                         validate=None if val_batch is None else lambda: _validate(model, val_batch, config, device),
                         validate_every=config.validate_every, save=save, checkpoint_every=config.checkpoint_every,
                         summary=("total", "val_total", "val_psnr_interp"))


def _recipe(config: TrainConfig, sources: list[_Source]) -> dict:
    """What a run must share with a checkpoint to resume it: every setting but its length, plus the data."""
    recipe = {k: v for k, v in asdict(config).items() if k not in ("steps", "epochs", "device")}
    recipe["percentiles"] = list(recipe["percentiles"])
    recipe["data"] = [s.sha256 for s in sources]
    if any(s.weight != 1.0 for s in sources):
        recipe["weights"] = [s.weight for s in sources]
    return recipe


def _same_recipe(saved, recipe: dict) -> bool:
    """Whether a checkpoint's recipe matches; a setting it predates counts as that setting's default."""
    if not isinstance(saved, dict):
        return False
    defaults = _recipe(TrainConfig(), [])
    return all(saved.get(k, defaults.get(k)) == v for k, v in recipe.items())


def _card(config: TrainConfig, sources: list[_Source], parent: dict | None, device: str, step: int) -> ModelCard:
    return ModelCard(
        preset=config.preset,
        percentiles=tuple(config.percentiles),
        training={
            "recipe": asdict(config), "steps_done": step, "device": device, "fine_tuned_from": parent,
            "data": [{"source": s.name, "sha256": s.sha256, "planes": int(s.data.shape[0]),
                      "shape": list(s.data.shape), "triplets": len(s.triplets), "weight": s.weight}
                     for s in sources],
        },
        seed=config.seed,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
