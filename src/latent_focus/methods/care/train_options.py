"""``latent-focus train --preset care|care-tiny``: the options only the refocusing U-Net reads, and the run."""

from __future__ import annotations

import argparse

from ...pairs import focus_series
from .training import CareRecipe, train

_DEFAULTS = CareRecipe()


def add_train_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("care presets (refocusing U-Net; --focus names each stack's in-focus plane)")
    g.add_argument("--max-offset", type=int, default=8, metavar="PLANES",
                   help="train on planes at most this many planes from focus (default 8)")
    g.add_argument("--identity", type=float, default=_DEFAULTS.identity, metavar="FRACTION",
                   help=f"share of inputs that are the in-focus plane itself (default {_DEFAULTS.identity})")


def train_from_args(stacks, args: argparse.Namespace):
    """The training reports of ``latent-focus train`` for a care preset."""
    series = focus_series(stacks, args.focus, args.max_offset)
    recipe = CareRecipe(preset=args.preset, steps=args.steps or _DEFAULTS.steps, batch_size=args.batch_size,
                        crop=args.crop or _DEFAULTS.crop, lr=args.lr or _DEFAULTS.lr, seed=args.seed,
                        device=args.device, identity=args.identity)
    return train(series, args.output, recipe, init=args.init, overwrite=args.overwrite)
