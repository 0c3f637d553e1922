"""``latent-focus train --preset disentangled|ml-vae``: the options of the blur-code models' losses, and the run."""

from __future__ import annotations

import argparse

from .training import PRESETS, BlurCodeConfig, train

_DEFAULTS = BlurCodeConfig()


def add_train_options(p: argparse.ArgumentParser) -> None:
    """The options only the ``disentangled`` and ``ml-vae`` presets read."""
    g = p.add_argument_group(f"{' and '.join(PRESETS)} presets (blur-code models)")
    g.add_argument("--contrastive", type=float, default=_DEFAULTS.contrastive, metavar="W",
                   help=f"weight of the contrastive loss (Eq. 4.7; default {_DEFAULTS.contrastive})")
    g.add_argument("--consistency", type=float, default=_DEFAULTS.consistency, metavar="W",
                   help=f"weight of the consistency loss (Eq. 4.6; default {_DEFAULTS.consistency})")
    g.add_argument("--cross", type=float, default=_DEFAULTS.cross, metavar="W",
                   help=f"weight of the cross-reconstruction loss (Eq. 4.8; default {_DEFAULTS.cross})")
    g.add_argument("--margin", type=float, default=_DEFAULTS.margin,
                   help=f"contrastive margin m (default {_DEFAULTS.margin})")
    g.add_argument("--ssim-weight", type=float, default=_DEFAULTS.ssim_weight, metavar="W",
                   help=f"reconstruction loss L1 + W (1 - SSIM) (default {_DEFAULTS.ssim_weight})")
    g.add_argument("--kl", type=float, default=_DEFAULTS.kl, metavar="W",
                   help=f"ml-vae: weight of the KL terms (default {_DEFAULTS.kl})")
    g.add_argument("--delay", type=int, default=None, metavar="STEPS",
                   help="steps over which the weight of the non-reconstruction losses rises to 1 "
                        "(default: a tenth of the run)")
    g.add_argument("--focus-pairs", type=float, default=_DEFAULTS.focus_pairs, metavar="FRACTION",
                   help="fraction of field couples taken from the in-focus planes of two different stacks "
                        f"(default {_DEFAULTS.focus_pairs})")


def train_from_args(stacks, args: argparse.Namespace):
    """The training reports of ``latent-focus train`` for a blur-code preset."""
    config = BlurCodeConfig(
        preset=args.preset, steps=args.steps or _DEFAULTS.steps, batch_size=args.batch_size,
        crop=args.crop or _DEFAULTS.crop, lr=args.lr or _DEFAULTS.lr, seed=args.seed, device=args.device,
        ssim_weight=args.ssim_weight, contrastive=args.contrastive, consistency=args.consistency, cross=args.cross,
        margin=args.margin, kl=args.kl, delay=args.delay, focus_pairs=args.focus_pairs)
    return train(stacks, args.output, config, focus=args.focus, init=args.init, overwrite=args.overwrite)
