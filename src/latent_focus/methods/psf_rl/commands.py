"""The ``latent-focus`` subcommands of ``psf-rl``: train-psf, blur-map and calibrate-depth."""

from __future__ import annotations

import argparse
import sys

from ...errors import InputError
from ..options import Command
from .progress import ProgressBar


def _train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("content", nargs="+", help="z-stacks of in-focus content (e.g. cells3d, a confocal stack); "
                   "planes whose 99th percentile reaches 30 %% of the stack's brightest are used")
    p.add_argument("-o", "--output", required=True, help="model folder to write")
    p.add_argument("--modality", default="widefield", choices=("widefield", "brightfield"))
    p.add_argument("--samples", type=int, default=20000, help="simulated training patches (default 20000)")
    p.add_argument("--val-samples", type=int, default=1000, help="simulated validation patches (other seeds)")
    p.add_argument("--steps", type=int, default=5000, help="optimisation steps (default 5000)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="peak Adam learning rate (one-cycle schedule)")
    p.add_argument("--max-waves", type=float, default=None,
                   help="largest simulated defocus in waves at the pupil edge (default 10 widefield, 20 brightfield)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep-data", action="store_true", help="keep the simulated patches after training")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--channel", type=int, default=None, help="channel of (z, c, y, x) content stacks")


def _train(args: argparse.Namespace) -> int:
    from ...io import read_stack
    from .simulation import Recipe
    from .training import TrainConfig, train_estimator

    waves = args.max_waves if args.max_waves is not None else (20.0 if args.modality == "brightfield" else 10.0)
    if not 0 < waves <= 100:
        raise InputError(f"--max-waves must be in (0, 100]; got {waves}")
    config = TrainConfig(modality=args.modality, samples=args.samples, val_samples=args.val_samples,
                         steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         device=args.device, recipe=Recipe(modality=args.modality, max_waves=waves))
    config.check()
    content = [read_stack(path, channel=args.channel) for path in args.content]
    bar = ProgressBar("train-psf")
    last = None
    for p in train_estimator(content, args.output, config, overwrite=args.overwrite, keep_data=args.keep_data):
        message = "" if p.loss is None else f"loss {p.loss:.4f}"
        if p.val:
            message += f" val R2 defocus {p.val['val_r2_defocus_waves']:.3f}"
        bar.update(p.done, p.total, message, p.eta_s, p.phase)
        last = p
    bar.close()
    if last is None:
        print(f"{args.output} is already trained with this recipe; nothing to do (pass --overwrite to start again)",
              file=sys.stderr)
    else:
        print(f"saved {args.output} after {last.done} steps on {last.device}", file=sys.stderr)
    return 0


COMMANDS = [
    Command("train-psf", "train the psf-rl PSF estimator on simulated patches of real in-focus content "
            "(seeded; started again, the same command resumes)", _train_arguments, _train),
]
