"""Training the analysis-synthesis pair on simulated defocus of real in-focus content, as a generator of progress.

Both networks train together. The analysis loss is the cross-entropy of the estimated kernel against the true one
(both are distributions over the 33 x 33 pixels; or their L1 distance). The synthesis loss is, by default, each
sample's squared error of the predicted residual divided by the residual's own power (plus a floor of
:data:`latent_focus.train_loop.RELATIVE_FLOOR`): every plane counts by how much closer to its in-focus plane it
gets, as PSNR counts it, so that strongly blurred planes do not teach the network to overcorrect mildly blurred
ones, and any change of an in-focus plane costs a lot. Plain squared error (``mse``) and L1 error (``l1``, whose
optimum where the content is uncertain is no correction at all) remain options. The synthesis sees the true kernel
for half of each batch and the analysis network's estimate (detached) for the other half, so that it learns to use
the kernel and to tolerate the estimator's errors. With ``real`` focus series (:mod:`latent_focus.pairs`), a
``real_share`` of each batch is real pairs instead: a defocused plane whose target is the same field's in-focus
plane; their kernel is unknown, so the synthesis is steered by the analysis network's estimate and only the
synthesis loss counts for them. Runs are seeded, checkpointed atomically every ``checkpoint_every`` steps and resume
from their checkpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.nn import functional as F

from ...device import describe, select_device
from ...errors import InputError
from ...io import Stack
from ...models import ModelCard, build_model, find_model, load_model, read_card
from ...models.modelfile import checkpoint_to_resume, save_checkpoint, save_model
from ...models.registry import check_preset
from ...pairs import FocusSeries, sample_batch
from ...progress import Progress
from ...train_loop import (
    TrainSettings,
    checkpoint_state,
    cosine_lr,
    optimizer_step,
    relative_squared_error,
    run_steps,
    seeded,
)
from ...train_loop import resume as resume_run
from .simulation import Sample, make_samples, make_settings

KERNEL_NOTE = ("33x33 image, sum 1: the objective's defocus PSF at the plane's pixel size (widefield: the blur "
               "itself; brightfield: the objective's incoherent PSF at the plane's defocus)")


@dataclass
class Recipe(TrainSettings):
    """How a pair is trained (stored in its model card)."""

    preset: str = "analysis-synthesis"
    steps: int = 2000
    crop: int = 96
    lr: float = 1e-3
    widefield_fraction: float = 0.7
    procedural: float = 0.3
    settings: int = 600
    kernel_weight: float = 1.0
    deblur_loss: str = "relative"
    kernel_loss: str = "kl"
    validate_every: int = 100
    val_samples: int = 48
    real_share: float = 0.0

    def check(self) -> None:
        check_preset(self.preset, "analysis-synthesis")
        if self.steps < 1 or self.batch_size < 1 or self.crop < 48 or self.lr <= 0 or self.settings < 2:
            raise InputError("--steps, --batch-size and --settings must be at least 1 (settings 2), --crop at "
                             "least 48 and --lr above 0")
        if self.deblur_loss not in ("relative", "mse", "l1") or self.kernel_loss not in ("kl", "l1"):
            raise InputError("--deblur-loss takes relative, mse or l1 and --kernel-loss kl or l1")
        for name in ("widefield_fraction", "procedural", "real_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(f"--{name.replace('_', '-')} must be from 0 to 1; got {getattr(self, name)}")


def _content(stacks: list[Stack]) -> tuple[list[np.ndarray], list[np.ndarray], list[dict]]:
    """Training and validation planes (the last 15 % of each stack's planes are held out), and their record."""
    train, val, record = [], [], []
    for s in stacks:
        data = np.asarray(s.data, dtype=np.float32)
        cut = max(1, int(round(len(data) * 0.85))) if len(data) > 1 else 1
        train += list(data[:cut])
        val += list(data[cut:]) or list(data[:1])
        record.append({"source": Path(s.source).name, "planes": len(data), "shape": list(data.shape),
                       "validation_planes": f"{cut}-{len(data) - 1}" if cut < len(data) else "",
                       "sha256": hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()})
    return train, val, record


def _tensors(samples: list[Sample]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.stack([s.x for s in samples])[:, None])
    r = torch.from_numpy(np.stack([s.residual for s in samples])[:, None])
    k = torch.from_numpy(np.stack([s.kernel for s in samples])[:, None])
    return x, r, k


def losses(model, x, residual, kernel, recipe: Recipe, true_kernel_mask: torch.Tensor) -> dict:
    """The two loss terms and their weighted sum for a batch."""
    estimate = model.analysis(x)
    if recipe.kernel_loss == "kl":
        kernel_loss = (kernel * (torch.log(kernel.clamp_min(1e-12)) - torch.log(estimate.clamp_min(1e-12)))
                       ).flatten(1).sum(1).mean()
    else:
        kernel_loss = (estimate - kernel).abs().mean() * kernel.shape[-1] ** 2
    steer = torch.where(true_kernel_mask[:, None, None, None], kernel, estimate.detach())
    deblur = _deblur_loss(model.synthesis.residual(x, steer), residual, recipe)
    return {"deblur": deblur, "kernel": kernel_loss, "total": deblur + recipe.kernel_weight * kernel_loss}


def real_loss(model, x, residual, recipe: Recipe) -> torch.Tensor:
    """The synthesis loss on real pairs, steered by the analysis network's (detached) kernel estimate."""
    return _deblur_loss(model.synthesis.residual(x, model.analysis(x).detach()), residual, recipe)


def _deblur_loss(predicted, residual, recipe: Recipe) -> torch.Tensor:
    if recipe.deblur_loss == "relative":
        return relative_squared_error(predicted - residual, residual)
    if recipe.deblur_loss == "mse":
        return F.mse_loss(predicted, residual)
    return F.l1_loss(predicted, residual)


@torch.no_grad()
def validate(model, batch, device: torch.device) -> dict[str, float]:
    """On held-out samples: kernel error (sum of absolute differences, 0..2), the mean deblurring PSNR gain over
    identity of the defocused samples, and the RMS change of the in-focus ones (in normalised units)."""
    model.eval()
    x, r, k = (t.to(device) for t in batch)
    estimate = model.analysis(x)
    predicted = model.synthesis.residual(x, estimate)
    model.train()
    mse_in = (r ** 2).flatten(1).mean(1)
    mse_out = ((r - predicted) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    blurred = mse_in > 0
    out = {"val_kernel_error": float((estimate - k).abs().flatten(1).sum(1).mean()),
           "val_deblur": float(F.l1_loss(predicted, r))}
    if blurred.any():
        out["val_gain_db"] = float((10 * torch.log10(mse_in[blurred] / mse_out[blurred])).mean())
    if (~blurred).any():
        out["val_focus_change"] = float(torch.sqrt((predicted[~blurred] ** 2).mean()))
    return out


def train(content: list[Stack], output: str | Path, recipe: Recipe | None = None, bead: Stack | None = None,
          overwrite: bool = False, init: str | Path | None = None,
          real: list[FocusSeries] | None = None) -> Iterator[Progress]:
    """Train a pair on ``content`` (real in-focus planes); yields a :class:`~latent_focus.progress.Progress` a step.

    ``bead`` adds kernels from a measured widefield bead stack; ``init`` (a model name or folder) starts from
    that model's weights, whose architecture wins over ``recipe.preset``. The model folder ``output`` receives the
    weights, card, loss history and a checkpoint; a run started again with the same recipe and content
    resumes from the checkpoint (closing the generator keeps the last completed step). ``real`` focus series
    make up ``recipe.real_share`` of each batch (see the module docstring).
    """
    recipe = replace(recipe or Recipe())
    if not content:
        raise InputError("pass at least one in-focus content stack (--content FILE)")
    output = Path(output)
    train_planes, val_planes, record = _content(content)
    parent = None
    if init is not None:
        init_path = find_model(init)
        parent_card = read_card(init_path)
        recipe.preset = parent_card.preset
        parent = {"name": parent_card.name or init_path.name, "weights_sha256": parent_card.weights_sha256,
                  "training": parent_card.training}
    recipe.check()
    real = real or []
    if recipe.real_share > 0 and not real:
        raise InputError("a real share above 0 needs real focus series")
    n_real = int(round(recipe.batch_size * recipe.real_share)) if real else 0
    real_records = [s.record() for s in real]
    signature = {"recipe": {k: v for k, v in asdict(recipe).items() if k not in ("steps", "device")},
                 "init": parent["weights_sha256"] if parent else None,
                 "content": [r["sha256"] for r in record],
                 "bead": hashlib.sha256(bead.data.tobytes()).hexdigest() if bead is not None else None,
                 **({"real": [r["sha256"] for r in real_records]} if real else {})}
    ckpt = checkpoint_to_resume(output, lambda c: c.get("signature") == signature, overwrite)
    device = select_device(recipe.device)
    rng = seeded(recipe.seed)
    n_wf = int(round(recipe.settings * recipe.widefield_fraction))
    settings = make_settings(np.random.default_rng([recipe.seed, 1]), n_wf, recipe.settings - n_wf, 33, bead)
    val_rng = np.random.default_rng([recipe.seed, 2])
    n_val = min(90, recipe.settings)  # validation microscopes: 60 widefield and 30 brightfield when there are enough
    val_settings = make_settings(val_rng, 2 * n_val // 3, n_val - 2 * n_val // 3, 33, bead)
    val_batch = _tensors(make_samples(val_planes, val_settings, val_rng, recipe.val_samples, recipe.crop,
                                      recipe.widefield_fraction, recipe.procedural))
    model = (load_model(find_model(init), device)[0] if init is not None else build_model(recipe.preset)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    history, start = resume_run(ckpt, model, opt, rng)
    dev_name = describe(device)

    def save(step: int) -> str:
        card = ModelCard(
            preset=recipe.preset, name=output.name, modality="widefield fluorescence and brightfield",
            description="analysis-synthesis pair: defocus kernel estimation and kernel-guided deblurring",
            training={"recipe": asdict(recipe), "steps_done": step, "device": dev_name, "content": record,
                      "bead": bool(bead is not None), "fine_tuned_from": parent,
                      "real_series": real_records},
            seed=recipe.seed, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            extra={"kernel_size": 33, "kernel": KERNEL_NOTE})
        save_model(output, model, card, history)
        return str(save_checkpoint(output, checkpoint_state(model, opt, history, step, rng, signature=signature)))

    def take_step(step: int):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(recipe.lr, step, recipe.steps)
        samples = make_samples(train_planes, settings, rng, recipe.batch_size - n_real, recipe.crop,
                               recipe.widefield_fraction, recipe.procedural)
        x, r, k = (t.to(device) for t in _tensors(samples))
        mask = torch.from_numpy(rng.random(len(samples)) < 0.5).to(device)
        terms = losses(model, x, r, k, recipe, mask)
        if n_real:
            xr, yr = (torch.from_numpy(t).to(device) for t in sample_batch(real, rng, n_real, recipe.crop))
            terms["real"] = real_loss(model, xr, yr - xr, recipe)
            n_sim = recipe.batch_size - n_real
            terms["total"] = (n_sim * terms["total"] + n_real * terms["real"]) / recipe.batch_size
        return optimizer_step(opt, terms, step + 1), {}

    model.train()
    yield from run_steps(take_step, history, dev_name, start=start, steps=recipe.steps,
                         validate=lambda: validate(model, val_batch, device), validate_every=recipe.validate_every,
                         save=save, checkpoint_every=recipe.checkpoint_every,
                         summary=("deblur", "kernel", "val_kernel_error", "val_gain_db"))
