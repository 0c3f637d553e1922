"""Train the CARE-style refocusing U-Net (method ``care``) on simulated and real focus series, resumably.

    python scripts/train_care.py OUT --sim SIM_DIR [--real SERIES_DIR ...] [--real-share 0.5]
        [--steps 8000] [--snapshot-every 1000]

``--sim`` folders are written by ``scripts/make_training_data.py`` (the in-focus plane of each stack is the
one at z = 0 in its ``recipe.json``; the last ``--val-stacks`` stacks are kept for validation only).
``--real`` folders hold a focus series as ``stack.tif`` with a ``meta.json`` giving its ``focus_plane``
(``scripts/build_corpus.py``). Real series are drawn ``--real-share`` of the time in all, each as often as the
others. Run it again with the same arguments to resume after a stop; ``OUT/snapshots/step_NNNNN.pt`` keeps
the weights every ``--snapshot-every`` steps for the learning curve.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from latent_focus.methods.care.training import CareRecipe, train
from latent_focus.pairs import FocusSeries
from train_latent import log_and_snapshot, real_series, sim_series


def care_series(sim_folders: list[Path], real_folders: list[Path], max_offset: int) -> tuple[list, list]:
    """The simulated and real focus series of the latent training script's folders, as training pairs."""
    sims = [FocusSeries(stack, focus) for folder in sim_folders for stack, focus in sim_series(folder)]
    reals = [FocusSeries(*real_series(folder, 0), max_offset=max_offset, name=folder.name) for folder in real_folders]
    return sims, reals


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--sim", type=Path, nargs="+", required=True)
    p.add_argument("--real", type=Path, nargs="*", default=[])
    p.add_argument("--real-share", type=float, default=0.5)
    p.add_argument("--max-offset", type=int, default=8, help="real series: planes at most this far from focus")
    p.add_argument("--val-stacks", type=int, default=8)
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (a lent GPU runs the same recipe)")
    p.add_argument("--snapshot-every", type=int, default=1000)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sims, reals = care_series(args.sim, args.real, args.max_offset)
    sims, val = sims[:-args.val_stacks], sims[-args.val_stacks:]
    share = args.real_share if reals else 0.0
    for s in sims:
        s.weight = (1 - share) / len(sims)
    for s in reals:
        s.weight = share / len(reals)
    recipe = CareRecipe(steps=args.steps, batch_size=args.batch_size, crop=args.crop, lr=args.lr, seed=args.seed,
                        device=args.device)
    record = {"simulated": [str(f) for f in args.sim], "real_share": share,
              "validation": [s.name for s in val], "command": "python scripts/train_care.py " + " ".join(
                  a if "/" not in a else Path(a).name for a in (argv or sys.argv[1:]))}
    print(f"{len(sims)} simulated and {len(reals)} real series; real share {share:g}", flush=True)
    for progress in train(sims + reals, args.out, recipe, validation=val, data_record=record):
        log_and_snapshot(progress, args.out, args.snapshot_every)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
