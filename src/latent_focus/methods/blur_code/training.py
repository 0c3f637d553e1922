"""Training of the ``disentangled`` and ``ml-vae`` presets, as a generator of :class:`latent_focus.progress.Progress`.

The same reports as the latent model's trainer, so ``latent-focus train --preset disentangled`` and the
training dock show progress, loss plot and Cancel unchanged: :func:`train` yields after every step,
stopping it (``close()``) keeps the last completed step, runs are seeded and resume from their checkpoint.

Each step draws a :class:`~latent_focus.methods.blur_code.sampling.Batch` of fields and applies
:func:`~latent_focus.methods.blur_code.losses.disentangled_losses` (or the ML-VAE objective). The learning
rate follows a cosine from ``lr`` to ``lr / 10``. When a model is saved, the blur codes of the training
stacks' planes (centre crops) give the card its in-focus code, the blur axis and its range
(:func:`code_summary`); the blur-code method and the napari slider read them from ``ModelCard.extra``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ...device import describe, select_device
from ...errors import InputError
from ...metrics import psnr
from ...models import ModelCard, build_model, find_model, load_model
from ...models.disentangled import join_latent, split_latent
from ...models.modelfile import checkpoint_to_resume, save_checkpoint, save_model
from ...progress import Progress
from ...train_loop import TrainSettings, checkpoint_state, optimizer_step, run_steps, seeded
from ...train_loop import resume as resume_run
from .losses import LossWeights, delay_weight, disentangled_losses, mlvae_losses
from .sampling import Source, prepare_sources, sample_batch, split_validation

PRESETS = ("disentangled", "ml-vae")
RECONSTRUCTION_NOTE = ("L1 + ssim_weight * (1 - SSIM) (11-px Gaussian window); the thesis' VGG-16 perceptual loss is "
                       "not used: its ImageNet weights cannot be fetched at run time nor shipped with the package")
SUMMARY_CROP = 128


@dataclass
class BlurCodeConfig(TrainSettings):
    """Recipe of one run (stored in the model card). ``batch_size`` counts fields; each brings two planes;
    ``blur_fields`` more fields a step go through the blur encoder alone, for the blur code's contrastive pairs."""

    preset: str = "disentangled"
    steps: int = 3000
    crop: int = 96
    lr: float = 1e-3
    ssim_weight: float = 0.2
    contrastive: float = 1.0
    consistency: float = 1.0
    cross: float = 1.0
    margin: float = 0.6
    kl: float = 0.01
    delay: int | None = None  # steps over which beta rises to 1; None: a tenth of the run
    focus_pairs: float = 0.5
    blur_fields: int = 32  # extra fields per step for the blur code's contrastive pairs (blur encoder only)
    val_fraction: float = 0.1
    percentiles: tuple[float, float] = (0.1, 99.9)

    def check(self) -> None:
        if self.preset not in PRESETS:
            raise InputError(f"preset {self.preset!r} is not a blur-code preset; pass one of {', '.join(PRESETS)}")
        if self.steps < 1 or self.batch_size < 2 or self.crop < 32 or self.crop % 16:
            raise InputError("pass --steps >= 1, --batch-size >= 2 and a --crop of at least 32 that divides by 16")
        for name in ("lr", "ssim_weight", "contrastive", "consistency", "cross", "margin", "kl", "focus_pairs"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name == "lr" and value == 0):
                raise InputError(f"{name.replace('_', '-')} must be a finite number >= 0 (lr > 0); got {value}")
        if self.focus_pairs > 1:
            raise InputError(f"focus-pairs is a fraction of the couples, from 0 to 1; got {self.focus_pairs}")

    @property
    def weights(self) -> LossWeights:
        return LossWeights(self.ssim_weight, self.contrastive, self.consistency, self.cross, self.margin, self.kl)

    def delay_steps(self) -> int:
        return max(1, self.steps // 10) if self.delay is None else int(self.delay)

    def lr_at(self, step: int) -> float:
        return self.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(step, self.steps) / self.steps)))


def losses(model, batch, config: BlurCodeConfig, beta: float, blur_batch=None) -> dict[str, torch.Tensor]:
    """The preset's loss terms for one batch (``"total"`` is what is minimised)."""
    if config.preset == "ml-vae":
        return mlvae_losses(model, batch, config.weights, beta)
    return disentangled_losses(model, batch, config.weights, beta, blur_batch)


@torch.no_grad()
def validate(model, batch, config: BlurCodeConfig, beta: float) -> dict[str, float]:
    """Validation losses, and PSNR of deblurring: each field's blurry plane ``b`` decoded with the mean blur
    code of the batch's in-focus planes ``a`` (plain, and residual: ``b + D(c, b_focus) - D(c, b_b)``), against
    its own in-focus plane (beside ``b`` as it is), and of the reconstruction of ``b``."""
    model.eval()
    terms = losses(model, batch, config, beta)
    xa, xb = batch.x[0], batch.x[1]
    identity_b, _ = split_latent(model.encode(xb))
    _, code_a = split_latent(model.encode(xa))
    focus = code_a.mean(dim=0, keepdim=True).expand(len(xb), -1)
    deblurred = model.decode(join_latent(identity_b, focus))
    recon = model.decode(model.encode(xb))
    model.train()
    to_np = lambda t: t.float().cpu().numpy()  # noqa: E731
    out = {f"val_{k}": float(v) for k, v in terms.items()}
    residual = xb + deblurred - recon
    out["val_psnr_deblur"] = float(np.mean([psnr(a, d, 1.0) for a, d in zip(to_np(xa[:, 0]), to_np(deblurred[:, 0]))]))
    out["val_psnr_residual"] = float(np.mean([psnr(a, d, 1.0) for a, d in zip(to_np(xa[:, 0]), to_np(residual[:, 0]))]))
    out["val_psnr_identity"] = float(np.mean([psnr(a, b, 1.0) for a, b in zip(to_np(xa[:, 0]), to_np(xb[:, 0]))]))
    out["val_psnr_rec"] = float(np.mean([psnr(b, r, 1.0) for b, r in zip(to_np(xb[:, 0]), to_np(recon[:, 0]))]))
    return out


@torch.no_grad()
def code_summary(model, sources: list[Source], device) -> dict:
    """The blur-code facts a model card carries, from centre crops of every plane of ``sources``.

    ``in_focus``: mean code of the focus planes; ``axis``: the unit direction along which the code grows
    with the distance from focus within a stack (the sign for a 1-D code, the first principal axis
    otherwise; oriented by the stacks' mean correlation, since distances of different stacks are in
    different units); ``range``: 1st and 99th percentile of the planes' blur codes ``code . axis``;
    ``focus_spread``: standard deviation of the focus planes' blur codes.
    """
    was_training = model.training
    model.eval()
    codes, levels, is_focus = [], [], []
    for src in sources:
        h, w = src.data.shape[1:]
        s = min(SUMMARY_CROP, h - h % 16, w - w % 16)
        y, x = (h - s) // 2, (w - s) // 2
        planes = torch.from_numpy(np.ascontiguousarray(src.data[:, None, y:y + s, x:x + s])).to(device)
        codes.append(split_latent(model.encode(planes))[1].float().cpu().numpy())
        levels.append(src.level)
        is_focus.append(np.arange(len(src.data)) == src.focus)
    model.train(was_training)
    code, focus = np.concatenate(codes), np.concatenate(is_focus)
    axis = np.linalg.svd(code - code.mean(axis=0), full_matrices=False)[2][0] if code.shape[1] > 1 else np.ones(1)
    trend = [np.corrcoef(c @ axis, lv)[0, 1] for c, lv in zip(codes, levels) if np.std(c @ axis) > 0]
    if np.nanmean(trend or [0.0]) < 0:
        axis = -axis
    value = code @ axis
    return {"dim": int(code.shape[1]), "in_focus": code[focus].mean(axis=0).tolist(), "axis": axis.tolist(),
            "range": [float(np.percentile(value, 1)), float(np.percentile(value, 99))],
            "focus_spread": float(value[focus].std()), "planes": int(len(code)), "stacks": len(sources),
            "crop": SUMMARY_CROP,
            "how": "blur codes of centre crops of every plane of the training stacks (validation stacks excluded); "
                   "in_focus is the mean code of their focus planes"}


def train(stacks, output: str | Path | None = None, config: BlurCodeConfig | None = None, focus=None,
          init: str | Path | None = None, resume: bool = True, overwrite: bool = False) -> Iterator[Progress]:
    """Train a ``disentangled`` or ``ml-vae`` model on ``stacks``; yields a :class:`Progress` after each step.

    Parameters
    ----------
    stacks : list of Stack or (z, y, x) arrays
        Training z-stacks (each normalised on its own).
    output : path, optional
        Model folder to write (weights, card, history, checkpoint); nothing is written when None.
    config : BlurCodeConfig
    focus : list of int, optional
        The in-focus plane of each stack; default: the sharpest plane by the variance of the Laplacian.
    init : model name or folder, optional
        Fine-tune these weights (a model of the same preset), or start the identity encoder and decoder from
        those of a multi-scale autoencoder of matching widths (:func:`warm_start`, e.g. the shipped ``default``).
    resume : bool
        Continue from ``output``'s checkpoint when it holds a run of the same recipe and data.
    overwrite : bool
        Replace an ``output`` folder that holds something else (else :class:`InputError`).
    """
    config = replace(config or BlurCodeConfig())
    config.check()
    sources, val_sources = split_validation(prepare_sources(stacks, focus, config.percentiles, config.crop),
                                            config.val_fraction)
    device = select_device(config.device)
    rng = seeded(config.seed)
    parent = None
    if init is not None:
        init_path = find_model(init)
        start_model, init_card = load_model(init_path, device)
        parent = {"name": init_card.name or init_path.name, "weights_sha256": init_card.weights_sha256,
                  "preset": init_card.preset}
        if init_card.preset == config.preset:
            model = start_model.train()
        else:  # an autoencoder of another preset: start from its encoder and decoder
            model = build_model(config.preset).to(device)
            parent["copied"] = warm_start(model, start_model, str(init))
    else:
        model = build_model(config.preset).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    recipe = _recipe(config, sources, val_sources)
    ckpt = checkpoint_to_resume(output, lambda c: c.get("recipe") == recipe, overwrite, resume)
    history, start = resume_run(ckpt, model, opt, rng)
    val_batch = (sample_batch(val_sources, 16, config.crop, np.random.default_rng(config.seed + 1), focus_only=True)
                 .to(device) if val_sources else None)
    dev_name = describe(device)
    delay = config.delay_steps()
    model.train()
    beta = 0.0

    def take_step(step: int):
        nonlocal beta
        batch = sample_batch(sources, config.batch_size, config.crop, rng, config.focus_pairs).to(device)
        blur_batch = (sample_batch(sources, config.blur_fields, config.crop, rng, config.focus_pairs).to(device)
                      if config.blur_fields and config.contrastive > 0 and config.preset != "ml-vae" else None)
        beta = delay_weight(step, delay)
        for group in opt.param_groups:
            group["lr"] = config.lr_at(step)
        return optimizer_step(opt, losses(model, batch, config, beta, blur_batch), step + 1), {"beta": beta}

    def save(step: int) -> str | None:
        if output is None:
            return None
        card = _card(config, sources, val_sources, parent, dev_name, step)
        card.extra = {"blur_code": code_summary(model, sources, device), "training_losses": _loss_record(config)}
        save_model(output, model, card, history)
        save_checkpoint(output, checkpoint_state(model, opt, history, step, rng, recipe=recipe))
        return str(output)

    yield from run_steps(take_step, history, dev_name, start=start, steps=config.steps,
                         validate=None if val_batch is None else lambda: validate(model, val_batch, config, beta),
                         validate_every=config.validate_every, save=save, checkpoint_every=config.checkpoint_every,
                         summary=("total", "val_total", "val_psnr_deblur"))


def warm_start(model, source, name: str = "the model") -> int:
    """Copy ``source``'s encoder and decoder (a multi-scale autoencoder of matching widths, e.g. the shipped
    ``default``) into ``model``'s identity encoder and decoder; returns how many tensors were copied. The
    blur branch and the modulation start afresh (the modulation at zero, so the decoder starts as the
    source's); an ML-VAE's identity log-variances start from their own initialisation."""
    renames = {"to_latent.": "to_identity.", "from_latent.": "from_identity."}
    target = model.state_dict()
    copied, skipped = 0, []
    with torch.no_grad():
        for key, value in source.state_dict().items():
            ours = next((key.replace(a, b, 1) for a, b in renames.items() if key.startswith(a)), key)
            have = target.get(ours)
            if have is not None and have.shape == value.shape:
                have.copy_(value)
            elif (have is not None and ours.startswith("to_identity.") and have.shape[1:] == value.shape[1:]
                  and have.shape[0] == 2 * value.shape[0]):
                have[: value.shape[0]].copy_(value)  # the means; the log-variances keep their start
            else:
                skipped.append(key)
                continue
            copied += 1
    if skipped:
        raise InputError(f"{name} does not match a {type(model).__name__}'s encoder and decoder "
                         f"({', '.join(skipped[:3])} ...); pass a model of the compact preset or one of this preset")
    return copied


def train_from_config(stacks, output, config: TrainSettings, init=None, resume: bool = True,
                      overwrite: bool = False) -> Iterator[Progress]:
    """:func:`train` driven by the training dock's config (:class:`TrainSettings` with ``preset``, ``crop`` and
    ``epochs``): its preset, length, batch, crop, learning rate, seed and device; the losses keep their defaults."""
    ours = BlurCodeConfig(preset=config.preset, batch_size=max(2, config.batch_size), crop=config.crop,
                          lr=config.lr, seed=config.seed, device=config.device,
                          validate_every=config.validate_every, checkpoint_every=config.checkpoint_every)
    ours.steps = config.steps
    if config.epochs:
        pixels = sum(int(np.prod(np.shape(s.data if hasattr(s, "data") else s))) for s in stacks)
        ours.steps = max(1, math.ceil(config.epochs * pixels / (2 * ours.batch_size * ours.crop ** 2)))
    return train(stacks, output, ours, init=init, resume=resume, overwrite=overwrite)


def _loss_record(config: BlurCodeConfig) -> dict:
    if config.preset == "ml-vae":
        terms = {"reconstruction": 1.0, "kl (blur codes and accumulated identity codes, per element)": config.kl}
    else:
        terms = {"reconstruction": 1.0, "consistency": config.consistency, "contrastive": config.contrastive,
                 "cross_reconstruction": config.cross}
    return {"weights": terms, "reconstruction": RECONSTRUCTION_NOTE, "ssim_weight": config.ssim_weight,
            "margin": config.margin, "delay_steps": config.delay_steps(),
            "distance": "Euclidean distance divided by sqrt(number of elements) (RMS difference)",
            "objective": "Eq. 4.4 (ML-VAE)" if config.preset == "ml-vae" else
            "Eq. 4.5: rec + beta * (consistency + contrastive + cross-reconstruction), beta = 1 - exp(-5 step / delay)"}


def _recipe(config: BlurCodeConfig, sources: list[Source], val_sources: list[Source]) -> dict:
    """What a run must share with a checkpoint to resume it: every setting but its length and device, and the data."""
    recipe = {k: v for k, v in asdict(config).items() if k not in ("steps", "device")}
    recipe["percentiles"] = list(recipe["percentiles"])
    recipe["data"] = [s.sha256 for s in sources]
    recipe["validation"] = [s.sha256 for s in val_sources]
    recipe["focus"] = [s.focus for s in sources + val_sources]
    return recipe


def _card(config, sources, val_sources, parent, device: str, step: int) -> ModelCard:
    def describe_data(group):
        return [{"source": s.name, "sha256": s.sha256, "planes": int(s.data.shape[0]),
                 "shape": list(s.data.shape), "focus": s.focus} for s in group]

    return ModelCard(
        preset=config.preset,
        percentiles=tuple(config.percentiles),
        training={"recipe": asdict(config), "steps_done": step, "device": device, "fine_tuned_from": parent,
                  "data": describe_data(sources), "validation_data": describe_data(val_sources)},
        seed=config.seed,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
