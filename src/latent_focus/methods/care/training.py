"""Training the refocusing U-Net on focus series with a known in-focus plane, as a generator of progress.

The loss is each crop's squared error against its in-focus crop divided by the input's own squared error (plus a
floor of :data:`latent_focus.train_loop.RELATIVE_FLOOR`), in the input plane's normalised units: every crop counts
by how much closer to focus it gets, as PSNR counts it, so that a bead whose in-focus peak is fifty times the
defocused plane's cannot outweigh the rest, and any change of an in-focus crop costs a lot. A fixed set of
validation crops, drawn once from the ``validation`` series, reports the mean PSNR gain over the input. Runs are
seeded, checkpointed atomically every ``checkpoint_every`` steps and resume from their checkpoint when started again
with the same recipe and data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ...device import describe, select_device
from ...errors import InputError
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


@dataclass
class CareRecipe(TrainSettings):
    """How a refocusing U-Net is trained (stored in its model card)."""

    preset: str = "care"
    steps: int = 4000
    batch_size: int = 8
    crop: int = 64
    lr: float = 3e-4
    identity: float = 0.1
    validate_every: int = 250
    checkpoint_every: int = 250
    val_samples: int = 64

    def check(self) -> None:
        check_preset(self.preset, "care")
        if self.steps < 1 or self.batch_size < 1 or self.crop < 16 or self.lr <= 0:
            raise InputError("--steps and --batch-size must be at least 1, --crop at least 16 and --lr above 0")
        if not 0 <= self.identity < 1:
            raise InputError(f"the share of in-focus inputs must be from 0 to below 1; got {self.identity}")


def relative_error(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over crops of the output's squared error relative to the input's (see the module docstring)."""
    return relative_squared_error(out - y, x - y)


@torch.no_grad()
def validate(model, batch, device: torch.device) -> dict[str, float]:
    """Mean PSNR gain over the input of the defocused validation crops, in dB (peak 1, normalised units)."""
    model.eval()
    x, y = (torch.from_numpy(t).to(device) for t in batch)
    out = model(x)
    model.train()
    before = ((x - y) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    after = ((out - y) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return {"val_gain_db": float((10 * torch.log10(before / after)).mean())}


def train(series: list[FocusSeries], output: str | Path, recipe: CareRecipe | None = None,
          validation: list[FocusSeries] | None = None, init: str | Path | None = None, overwrite: bool = False,
          data_record: dict | None = None) -> Iterator[Progress]:
    """Train a U-Net on ``series``; yields a :class:`~latent_focus.progress.Progress` a step.

    ``validation`` series (default: the training series) give the fixed validation crops; ``init`` (a model
    name or folder) starts from that model's weights. ``data_record`` is added to the card's training data.
    """
    recipe = replace(recipe or CareRecipe())
    if not series:
        raise InputError("pass at least one z-stack with its in-focus plane (--focus)")
    output = Path(output)
    parent = None
    if init is not None:
        parent_card = read_card(find_model(init))
        recipe.preset = parent_card.preset
        parent = {"name": parent_card.name, "weights_sha256": parent_card.weights_sha256}
    recipe.check()
    records = [s.record() for s in series]
    signature = {"recipe": {k: v for k, v in asdict(recipe).items() if k not in ("steps", "device")},
                 "init": parent["weights_sha256"] if parent else None, "data": [r["sha256"] for r in records]}
    ckpt = checkpoint_to_resume(output, lambda c: c.get("signature") == signature, overwrite)
    device = select_device(recipe.device)
    rng = seeded(recipe.seed)
    val_batch = sample_batch(validation or series, np.random.default_rng([recipe.seed, 2]), recipe.val_samples,
                             recipe.crop, identity=0.0)
    model = (load_model(find_model(init), device)[0] if init is not None else build_model(recipe.preset)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    history, start = resume_run(ckpt, model, opt, rng)
    dev_name = describe(device)

    def save(step: int) -> str:
        card = ModelCard(
            preset=recipe.preset, name=output.name, modality="widefield fluorescence, confocal, light-sheet, "
            "brightfield", description="CARE-style U-Net: supervised refocusing of one plane",
            training={"recipe": asdict(recipe), "steps_done": step, "device": dev_name, "fine_tuned_from": parent},
            training_data={"series": records, **(data_record or {})}, seed=recipe.seed,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        save_model(output, model, card, history)
        save_checkpoint(output, checkpoint_state(model, opt, history, step, rng, signature=signature))
        return str(output)

    def take_step(step: int):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(recipe.lr, step, recipe.steps)
        x, y = (torch.from_numpy(t).to(device) for t in sample_batch(series, rng, recipe.batch_size, recipe.crop,
                                                                       recipe.identity))
        return optimizer_step(opt, {"total": relative_error(model(x), x, y)}, step + 1), {}

    model.train()
    yield from run_steps(take_step, history, dev_name, start=start, steps=recipe.steps,
                         validate=lambda: validate(model, val_batch, device), validate_every=recipe.validate_every,
                         save=save, checkpoint_every=recipe.checkpoint_every, summary=("total", "val_gain_db"))
