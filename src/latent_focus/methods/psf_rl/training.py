"""Training the PSF estimator on simulated patches: seeded, resumable, with a model card.

:func:`train_estimator` is a generator: it first simulates the samples (in chunks written to a cache folder
inside the model folder, each from its own seed, so an interrupted run picks up where it stopped), then trains
the CNN, checkpointing atomically every ``checkpoint_every`` steps, and yields
:class:`~latent_focus.progress.Progress` along the way (phase ``simulate``, then ``train``). The same command
started again resumes from the checkpoint; the cache is removed once training is done.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ...device import describe, select_device
from ...errors import InputError
from ...files import atomic_write
from ...io import Stack
from ...models import ModelCard, build_model, save_model
from ...models.modelfile import checkpoint_to_resume, save_checkpoint
from ...progress import Progress
from ...train_loop import TrainSettings, checkpoint_state, run_steps, seeded
from ...train_loop import resume as resume_run
from .estimator import PRESET, decode_outputs, encode_targets, transform_targets
from .sampling import PATCH, normalize_patches
from .simulation import MODALITIES, SimulationRecipe, simulate_sample

CHUNK = 500  # samples per cache file
CACHE = "simulated"


@dataclass
class EstimatorTrainConfig(TrainSettings):
    """One training run of the PSF estimator."""

    modality: str = "widefield"
    samples: int = 24000
    val_samples: int = 1000
    steps: int = 8000
    batch_size: int = 32
    lr: float = 1e-3
    checkpoint_every: int = 200
    validate_every: int = 500
    device: str = "cpu"
    focus: list[int] | None = None  # in-focus plane of each content stack (None: planes bright enough)
    focus_range: int = 1  # planes either side of focus taken as in-focus content
    recipe: SimulationRecipe = field(default_factory=SimulationRecipe)

    def check(self) -> None:
        if self.modality not in MODALITIES:
            raise InputError(f"--modality must be one of {', '.join(MODALITIES)}; got {self.modality!r}")
        for name in ("samples", "steps", "batch_size", "checkpoint_every", "validate_every"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(self, name)}")
        if self.focus_range < 0:
            raise InputError(f"--focus-range must be at least 0; got {self.focus_range}")
        if self.val_samples < 0 or not (0 < self.lr < 1):
            raise InputError("--val-samples must be >= 0 and --lr in (0, 1)")
        if self.recipe.modality != self.modality:
            raise InputError("the recipe's modality differs from the run's; pass one --modality")


def content_planes(stacks: list[Stack], focus: list[int] | None = None, focus_range: int = 1) -> list[np.ndarray]:
    """In-focus content: the planes within ``focus_range`` of each stack's in-focus plane ``focus`` (one per
    stack), or, without ``focus``, the planes whose 99th percentile reaches 30 % of the stack's brightest."""
    if focus is not None:
        if len(focus) != len(stacks):
            raise InputError(f"--focus takes one plane per content stack; got {len(focus)} for {len(stacks)}")
        planes = []
        for s, f in zip(stacks, focus):
            if not 0 <= f < s.n_planes:
                raise InputError(f"in-focus plane {f} is out of range for {s.source} of {s.n_planes} planes")
            planes += [s.data[i] for i in range(max(0, f - focus_range), min(s.n_planes, f + focus_range + 1))]
        return planes
    planes = []
    for s in stacks:
        top = np.percentile(s.data.reshape(s.n_planes, -1), 99, axis=1)
        low = np.percentile(s.data, 1)
        planes += [s.data[i] for i in range(s.n_planes) if top[i] - low >= 0.3 * (top.max() - low)]
    if not planes:
        raise InputError("no content planes found; pass in-focus stacks with visible structure")
    return planes


def _content_key(stacks: list[Stack]) -> str:
    h = hashlib.sha256()
    for s in stacks:
        h.update(np.ascontiguousarray(s.data).tobytes())
    return h.hexdigest()[:16]


def _chunk(contents, config: EstimatorTrainConfig, index: int, n: int, stream: int):
    """``n`` samples of chunk ``index`` of a stream (0 training, 1 validation), each from its own seed."""
    patches = np.empty((n, PATCH, PATCH), np.float16)
    cond = np.empty((n, 2), np.float32)
    target = np.empty((n, 3), np.float32)
    for k in range(n):
        rng = np.random.default_rng([config.seed, stream, index, k])
        p, c, t, _ = simulate_sample(contents, rng, config.recipe)
        lo, hi = np.percentile(p, [1, 99])  # stored normalised, so float16 keeps the detail
        patches[k] = (p - lo) / max(hi - lo, 1e-6)
        cond[k], target[k] = c, t
    return patches, cond, target


def _simulate(contents, config: EstimatorTrainConfig, cache: Path, key: str) -> Iterator[Progress]:
    jobs = [(0, i, min(CHUNK, config.samples - i * CHUNK)) for i in range(math.ceil(config.samples / CHUNK))]
    jobs += [(1, i, min(CHUNK, config.val_samples - i * CHUNK)) for i in range(math.ceil(config.val_samples / CHUNK))]
    cache.mkdir(parents=True, exist_ok=True)
    t0, made = time.perf_counter(), 0
    total = config.samples + config.val_samples
    todo = [(s, i, n) for s, i, n in jobs if not _chunk_path(cache, key, s, i).is_file()]
    done = total - sum(n for _, _, n in todo)
    yield Progress(done, total, unit="sample", phase="simulate")
    for stream, i, n in todo:
        p, c, t = _chunk(contents, config, i, n, stream)
        atomic_write(_chunk_path(cache, key, stream, i),
                     lambda tmp, p=p, c=c, t=t: np.savez(tmp, patches=p, cond=c, target=t))
        made += n
        done += n
        rate = made / max(time.perf_counter() - t0, 1e-9)
        yield Progress(done, total, unit="sample", phase="simulate", eta_s=(total - done) / rate)


def _chunk_path(cache: Path, key: str, stream: int, index: int) -> Path:
    return cache / f"{key}-{'train' if stream == 0 else 'val'}-{index:04d}.npz"


def _load(cache: Path, key: str, stream: int, n: int):
    parts = [np.load(_chunk_path(cache, key, stream, i)) for i in range(math.ceil(n / CHUNK))]
    if not parts:
        return None
    return tuple(torch.from_numpy(np.concatenate([p[k] for p in parts])) for k in ("patches", "cond", "target"))


def _batch(data, idx: np.ndarray, rng: np.random.Generator):
    """Patches of ``idx`` under random flips and transposes, with the targets transformed alike."""
    patches, cond, target = data
    x = patches[idx].float()
    t = target[idx].clone()
    ops = rng.integers(0, 8, size=len(idx))
    for j, op in enumerate(ops):
        x[j] = _dihedral(x[j], int(op)).clone()
    t = transform_targets(t, torch.from_numpy(ops))
    return normalize_patches(x[:, None]), cond[idx], t


def _dihedral(x: torch.Tensor, op: int) -> torch.Tensor:
    if op & 1:
        x = torch.flip(x, (1,))
    if op & 2:
        x = torch.flip(x, (0,))
    if op & 4:
        x = x.transpose(0, 1)
    return x


def laplace_loss(out: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 of the encoded estimates and the Laplace negative log-likelihood of their (detached) errors."""
    enc = encode_targets(target)
    n = enc.shape[1]
    mean, log_b = out[:, :n], out[:, n:].clamp(-7, 5)
    l1 = (mean - enc).abs()
    nll = log_b + (mean.detach() - enc).abs() / log_b.exp()
    return l1.mean(), nll.mean()


def r2_scores(pred: np.ndarray, truth: np.ndarray) -> list[float]:
    """R^2 of each column of ``pred`` against ``truth``."""
    ss_res = ((pred - truth) ** 2).sum(0)
    ss_tot = ((truth - truth.mean(0)) ** 2).sum(0)
    return [float(1 - r / max(t, 1e-12)) for r, t in zip(ss_res, ss_tot)]


@torch.no_grad()
def predict(model, patches: torch.Tensor, cond: torch.Tensor, device, batch: int = 256) -> np.ndarray:
    """Decoded estimates ``(n, 3)`` and their error scales ``(n, 3)`` for already normalised patches."""
    model.eval()
    outs = [model(patches[i:i + batch].to(device), cond[i:i + batch].to(device)).cpu()
            for i in range(0, len(patches), batch)]
    return decode_outputs(torch.cat(outs)).numpy()


def train_estimator(content: list[Stack], output: str | Path, config: EstimatorTrainConfig | None = None,
                    overwrite: bool = False, keep_data: bool = False) -> Iterator[Progress]:
    """Simulate the samples, then train the estimator; writes ``output`` (weights, card, history)."""
    config = config or EstimatorTrainConfig()
    config.check()
    output = Path(output)
    contents = content_planes(content, config.focus, config.focus_range)
    key = hashlib.sha256(repr((asdict(config.recipe), config.seed, _content_key(content), config.focus,
                               config.focus_range)).encode()).hexdigest()[:12]
    recipe = _run_recipe(config, key)
    simulating = output.is_dir() and {p.name for p in output.iterdir()} == {CACHE}  # stopped while simulating
    ckpt = checkpoint_to_resume(output, lambda c: c.get("recipe") == recipe, overwrite or simulating)
    resumable = ckpt is not None
    if output.is_dir() and not resumable and (overwrite or not simulating):  # --overwrite: start afresh
        shutil.rmtree(output)
    done_before = int(ckpt["step"]) if resumable else 0
    if done_before >= config.steps:
        return
    output.mkdir(parents=True, exist_ok=True)
    cache = output / CACHE
    yield from _simulate(contents, config, cache, key)
    data = _load(cache, key, 0, config.samples)
    val = _load(cache, key, 1, config.val_samples)
    val_x = normalize_patches(val[0].float()[:, None]) if val is not None else None

    device = select_device(config.device)
    dev_name = describe(device)
    seeded(config.seed)
    model = build_model(PRESET).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.05)
    history, start = resume_run(ckpt, model, opt, scheduler=sched)
    last_val = None
    n = len(data[0])

    def take_step(step: int):
        rng = np.random.default_rng([config.seed, 2, step])
        x, c, t = _batch(data, rng.integers(0, n, size=config.batch_size), rng)
        model.train()
        l1, nll = laplace_loss(model(x.to(device), c.to(device)), t.to(device))
        loss = l1 + 0.1 * nll
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        record = {"loss": loss.item(), "l1": l1.item(), "nll": nll.item()}
        if not math.isfinite(record["loss"]):
            raise RuntimeError(f"training diverged at step {step + 1}; lower --lr")
        return record, {}

    def validate() -> dict:
        nonlocal last_val
        last_val = _validate(model, val_x, val[1], val[2], device)
        return last_val

    def save(step: int) -> None:
        save_model(output, model, _card(config, content, dev_name, step, last_val), history)
        save_checkpoint(output, checkpoint_state(model, opt, history, step, scheduler=sched, recipe=recipe))

    for p in run_steps(take_step, history, dev_name, start=start, steps=config.steps,
                       validate=None if val_x is None else validate, validate_every=config.validate_every,
                       save=save, checkpoint_every=config.checkpoint_every, summary=("loss", "val_r2_defocus_waves")):
        p.phase = "train"
        yield p
    if not keep_data:
        shutil.rmtree(cache, ignore_errors=True)


def _validate(model, x, cond, target, device) -> dict:
    est = predict(model, x, cond, device)[:, :3]
    truth = target.numpy()
    r2 = r2_scores(est, truth)
    mae = np.median(np.abs(est - truth), axis=0)
    names = ("defocus_waves", "astig_0", "astig_45")
    return {**{f"val_r2_{k}": round(v, 4) for k, v in zip(names, r2)},
            **{f"val_median_abs_{k}": round(float(v), 4) for k, v in zip(names, mae)}}


def _run_recipe(config: EstimatorTrainConfig, key: str) -> dict:
    """What a checkpoint must share with this run to be resumed: all but the run's length and device."""
    d = asdict(config)
    for k in ("steps", "device", "checkpoint_every", "validate_every"):
        d.pop(k)
    d["recipe"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["recipe"].items()}
    return {"config": d, "data": key, "steps": config.steps}


def _source_name(stack: Stack) -> str:
    """The file name with its folder (stacks are often all called stack.tif)."""
    path = Path(stack.source)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _card(config: EstimatorTrainConfig, content: list[Stack], device: str, step: int,
          metrics: dict | None) -> ModelCard:
    return ModelCard(
        preset=PRESET,
        name="",
        description=f"PSF parameter estimator for {config.modality} planes (psf-rl)",
        modality=config.modality,
        training={"recipe": asdict(config), "steps_done": step, "device": device,
                  "content": [{"source": _source_name(s), "planes": s.n_planes, "shape": list(s.data.shape)}
                              for s in content]},
        evaluation={"validation": metrics} if metrics else {},
        seed=config.seed,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extra={"method": "psf-rl", "modality": config.modality, "patch": PATCH,
               "targets": "canonical (|W|, s A0, s A45) in waves" if config.modality == "widefield"
               else "signed (W, A0, A45) in waves"},
    )
