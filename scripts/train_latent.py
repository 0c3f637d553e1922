"""Train a latent model on simulated and real focus series, resumably, keeping a snapshot every N steps.

    python scripts/train_latent.py OUT --sim SIM_DIR [SIM_DIR ...] [--real SERIES_DIR ...]
        [--real-share 0.5] [--from default] [--steps 15000] [--lr 3e-4] [--snapshot-every 1000]

``--sim`` folders are written by ``scripts/make_training_data.py`` (the in-focus plane of each stack is the
one at z = 0 in its ``recipe.json``). ``--real`` folders hold a focus series as ``stack.tif`` with a
``meta.json`` giving its ``focus_plane`` (the corpus layout of ``docs/real-data.md``); planes smaller than
the crop are mirrored out to it. Real series are drawn
``--real-share`` of the time in all, each as often as the others. Run it again with the same arguments to
resume after a stop; ``OUT/snapshots/step_NNNNN.pt`` keeps the weights at every ``--snapshot-every`` steps
for the learning curve.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from latent_focus.io import read_stack
from latent_focus.methods.latent.training import TrainConfig, train
from latent_focus.models.modelfile import keep_snapshot


def sim_series(folder: Path) -> list[tuple]:
    """(stack, focus) of every stack listed in ``folder/recipe.json``."""
    out = []
    for entry in json.loads((folder / "recipe.json").read_text()):
        stack = read_stack(folder / entry["file"])
        out.append((stack, int(np.argmin(np.abs(np.asarray(entry["z_um"]))))))
    return out


def real_series(folder: Path, crop: int) -> tuple:
    """(stack, focus) of a corpus folder; planes smaller than ``crop`` are mirrored out to it."""
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("focus_plane") is None:
        raise SystemExit(f"{folder}/meta.json gives no focus_plane; leave this series out")
    stack = read_stack(folder / "stack.tif")
    h, w = stack.data.shape[1:]
    if h < crop or w < crop:
        pad = [(0, 0), (0, max(crop - h, 0)), (0, max(crop - w, 0))]
        stack.data = np.pad(stack.data, pad, mode="symmetric")
    return stack, int(meta["focus_plane"])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--sim", type=Path, nargs="+", required=True)
    p.add_argument("--real", type=Path, nargs="*", default=[])
    p.add_argument("--real-share", type=float, default=0.5)
    p.add_argument("--from", dest="init", default=None)
    p.add_argument("--steps", type=int, default=15000)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--extrapolation", type=float, default=1.0)
    p.add_argument("--triplets", default="all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (a lent GPU runs the same recipe)")
    p.add_argument("--snapshot-every", type=int, default=1000)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sims = [s for folder in args.sim for s in sim_series(folder)]
    reals = [real_series(folder, args.crop) for folder in args.real]
    stacks = [s for s, _ in sims + reals]
    focus = [f for _, f in sims + reals]
    share = args.real_share if reals else 0.0
    weights = [(1 - share) / len(sims)] * len(sims) + [share / max(len(reals), 1)] * len(reals)
    weights = [w * len(stacks) for w in weights]  # mean weight 1
    config = TrainConfig(preset="compact", regularization="direct", steps=args.steps, batch_size=args.batch_size,
                         crop=args.crop, lr=args.lr, seed=args.seed, device=args.device, validate_every=250,
                         checkpoint_every=250, triplets=args.triplets, extrapolation=args.extrapolation)
    print(f"{len(sims)} simulated and {len(reals)} real stacks; real share {share:g}", flush=True)
    for progress in train(stacks, args.out, config, init=args.init, focus=focus, weights=weights):
        log_and_snapshot(progress, args.out, args.snapshot_every)


def log_and_snapshot(progress, out: Path, snapshot_every: int) -> None:
    """Print a line every 50 steps; copy the weights to ``out/snapshots/step_NNNNN.pt`` every ``snapshot_every``."""
    if progress.done % 50 == 0:
        val = progress.val or {}
        print(f"step {progress.done}/{progress.total} loss {progress.losses['total']:.4f} "
              + " ".join(f"{k} {v:.4f}" for k, v in val.items())
              + f" eta {progress.eta_s / 60:.0f} min", flush=True)
    if progress.checkpoint and progress.done % snapshot_every == 0:
        keep_snapshot(out, progress.done)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # one line, as the command line does
        sys.exit(f"train_latent: {exc}")
