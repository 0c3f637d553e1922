"""``latent-focus train-analysis-synthesis``: train the pair on in-focus content stacks, with a progress bar."""

from __future__ import annotations

import argparse
import sys

from ...device import DEVICE_CHOICES
from ...errors import InputError
from ...models.modelfile import keep_snapshot
from ...terminal import ProgressLine
from ..options import Command, add_axes, plane_index
from .training import Recipe, train


def _add_arguments(p: argparse.ArgumentParser) -> None:
    d = Recipe()
    p.add_argument("-o", "--output", required=True, help="model folder to write (resumes a run with the same recipe)")
    p.add_argument("--content", nargs="+", required=True, metavar="FILE",
                   help="in-focus content: TIFF stacks or planes whose every plane is sharp (e.g. confocal sections)")
    p.add_argument("--bead", default=None, help="measured widefield bead z-stack (with z positions) for more kernels")
    p.add_argument("--real", nargs="+", default=[], metavar="FILE",
                   help="real focus series (z-stacks of one field) whose defocused planes train against their "
                        "in-focus plane")
    p.add_argument("--real-focus", nargs="+", type=plane_index, default=None, metavar="PLANE",
                   help="in-focus plane of each --real stack, or one for all (default: the sharpest plane)")
    p.add_argument("--real-share", type=float, default=0.5,
                   help="fraction of each batch drawn from the --real series (default 0.5)")
    p.add_argument("--max-offset", type=int, default=8, metavar="PLANES",
                   help="--real series: planes at most this many planes from focus (default 8)")
    add_axes(p)
    p.add_argument("--preset", default=d.preset, help="architecture (analysis-synthesis or analysis-synthesis-tiny)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimisation steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--crop", type=int, default=d.crop, help="simulated crop side in pixels")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (cosine decay to 1/20 of it)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--widefield-fraction", type=float, default=d.widefield_fraction,
                   help="fraction of widefield fluorescence samples; the rest are brightfield")
    p.add_argument("--procedural", type=float, default=d.procedural,
                   help="fraction of samples whose content is procedural blobs and filaments")
    p.add_argument("--from", dest="init", default=None, metavar="MODEL",
                   help="start from this analysis-synthesis model's weights (fine-tuning)")
    p.add_argument("--deblur-loss", default=d.deblur_loss, choices=("relative", "mse", "l1"),
                   help="synthesis loss on the residual: squared error relative to each residual's power, plain "
                        "squared error, or L1")
    p.add_argument("--kernel-loss", default=d.kernel_loss, choices=("kl", "l1"),
                   help="analysis loss: cross-entropy of the kernels (kl) or their L1 distance")
    p.add_argument("--settings", type=int, default=d.settings, help="simulated microscopes (optics and defocus)")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--snapshot-every", type=int, default=0, metavar="STEPS",
                   help="keep the weights in OUTPUT/snapshots/ at every checkpoint (each 100th step and the "
                        "last) whose step is a multiple of STEPS, for a learning curve (default: none)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder")


def _run(args: argparse.Namespace) -> int:
    from ...io import read_stack

    content = [read_stack(f, axes=args.axes) for f in args.content]
    bead = read_stack(args.bead) if args.bead else None
    real = _real_series(args)
    recipe = Recipe(preset=args.preset, steps=args.steps, batch_size=args.batch_size, crop=args.crop, lr=args.lr,
                    seed=args.seed, widefield_fraction=args.widefield_fraction, procedural=args.procedural,
                    settings=args.settings, deblur_loss=args.deblur_loss, kernel_loss=args.kernel_loss,
                    device=args.device, real_share=args.real_share if real else 0.0)
    if args.snapshot_every < 0:
        raise InputError(f"--snapshot-every must be 0 (none) or more; got {args.snapshot_every}")
    last = None
    bar = ProgressLine("train-analysis-synthesis", every=5)
    for progress in train(content, args.output, recipe, bead, args.overwrite, args.init, real):
        bar.update(progress)
        if args.snapshot_every and progress.checkpoint and progress.done % args.snapshot_every == 0:
            keep_snapshot(args.output, progress.done)
        last = progress
    bar.close()
    if last is None:
        print(f"{args.output} is already trained to {args.steps} steps with this recipe; pass more --steps to "
              "train further, or --overwrite to start again", file=sys.stderr)
    else:
        print(f"saved {args.output} after {last.done} steps on {last.device}", file=sys.stderr)
    return 0


def _real_series(args: argparse.Namespace) -> list:
    """The ``--real`` focus series with their in-focus planes."""
    from ...io import read_stack
    from ...pairs import focus_series

    stacks = [read_stack(f, axes=args.axes) for f in args.real]
    return focus_series(stacks, args.real_focus, args.max_offset, "--real-focus", "--real stack")


TRAIN = Command("train-analysis-synthesis", "train the analysis-synthesis pair on simulated defocus of in-focus "
                "content (resumable)", _add_arguments, _run)
