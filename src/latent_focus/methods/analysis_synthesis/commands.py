"""``latent-focus train-analysis-synthesis``: train the pair on in-focus content stacks, with a progress bar."""

from __future__ import annotations

import argparse
import sys

from ...device import DEVICE_CHOICES
from ...terminal import ProgressLine
from ..options import Command, add_axes
from .training import Recipe, train


def _add_arguments(p: argparse.ArgumentParser) -> None:
    d = Recipe()
    p.add_argument("-o", "--output", required=True, help="model folder to write (resumes a run with the same recipe)")
    p.add_argument("--content", nargs="+", required=True, metavar="FILE",
                   help="in-focus content: TIFF stacks or planes whose every plane is sharp (e.g. confocal sections)")
    p.add_argument("--bead", default=None, help="measured widefield bead z-stack (with z positions) for more kernels")
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
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder")


def _run(args: argparse.Namespace) -> int:
    from ...io import read_stack

    content = [read_stack(f, axes=args.axes) for f in args.content]
    bead = read_stack(args.bead) if args.bead else None
    recipe = Recipe(preset=args.preset, steps=args.steps, batch_size=args.batch_size, crop=args.crop, lr=args.lr,
                    seed=args.seed, widefield_fraction=args.widefield_fraction, procedural=args.procedural,
                    settings=args.settings, deblur_loss=args.deblur_loss, kernel_loss=args.kernel_loss,
                    device=args.device)
    last = None
    bar = ProgressLine("train-analysis-synthesis", every=5)
    for progress in train(content, args.output, recipe, bead, args.overwrite, args.init):
        bar.update(progress)
        last = progress
    bar.close()
    if last is None:
        print(f"{args.output} is already trained to {args.steps} steps with this recipe; pass more --steps to "
              "train further, or --overwrite to start again", file=sys.stderr)
    else:
        print(f"saved {args.output} after {last.done} steps on {last.device}", file=sys.stderr)
    return 0


TRAIN = Command("train-analysis-synthesis", "train the analysis-synthesis pair on simulated defocus of in-focus "
                "content (resumable)", _add_arguments, _run)
