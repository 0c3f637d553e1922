"""``latent-focus blur-code-score``: the thesis' scores of a blur-code model on z-stacks with a known focus plane.

Per stack: reconstruction PSNR/SSIM, deblurring PSNR/SSIM against the real in-focus plane (plain and
residual decoding, beside the plane as it is), and the R² / Spearman correlation of the planes' blur codes
against their distance from focus; over all stacks: the ML-VAE score (Eq. 4.10). ``latent-focus evaluate
--method blur-code`` scores the method's deblurring beside the other methods.
"""

from __future__ import annotations

import argparse
import json
import sys

from ...device import DEVICE_CHOICES
from ...errors import InputError
from ...io import read_stack
from ..options import Command, add_axes


def _plane(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"plane index must be a whole number; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"plane index must be 0 or more; got {value}")
    return value


def _focus(focus: list[int], n: int) -> list[int]:
    if len(focus) not in (1, n):
        raise InputError(f"--focus takes one plane index, or one per stack ({n}); got {len(focus)}")
    return focus * n if len(focus) == 1 else focus


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stacks", nargs="+", help="z-stacks with a known in-focus plane")
    p.add_argument("--focus", nargs="+", type=_plane, required=True,
                   help="in-focus plane index (one, or one per stack)")
    p.add_argument("--model", "-m", default=None, help="blur-code model folder or name (default: the shipped one)")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--channel", type=int, default=None, help="channel of (z, c, y, x) stacks")
    add_axes(p)
    p.add_argument("--epochs", type=int, default=300, help="full-batch epochs of the ML-VAE score's classifiers")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")


def run(args: argparse.Namespace) -> int:
    from . import BlurCodeMethod
    from .codes import BlurAxis
    from .evaluation import model_mlvae_score, score_stack

    stacks = [read_stack(s, channel=args.channel, axes=args.axes) for s in args.stacks]
    focus = _focus(args.focus, len(stacks))
    engine = BlurCodeMethod.load(args.model, args.device).engine
    reports = [score_stack(engine, s, f) for s, f in zip(stacks, focus)]
    score = model_mlvae_score(engine, stacks, [list(range(s.n_planes)) for s in stacks], epochs=args.epochs)
    axis = BlurAxis.from_card(engine.card)
    if args.json:
        print(json.dumps({"model": engine.name, "in_focus_code": axis.focus_value, "mlvae": score._asdict(),
                          "stacks": [r.__dict__ for r in reports]}, indent=1))
        return 0
    print(f"model {engine.name} on {engine.device_name}; in-focus blur code {axis.focus_value:.3f}")
    head = (f"{'stack':<28}{'planes':>7}{'rec PSNR':>9}{'rec SSIM':>9}{'id PSNR':>8}{'plain':>8}{'residual':>9}"
            f"{'id SSIM':>8}{'plain':>7}{'resid.':>7}{'R2':>6}{'rho':>6}{'dB/code':>9}")
    print(head)
    for r in reports:
        name = r.source[-28:]
        print(f"{name:<28}{len(r.planes):>7}{r.median('rec_psnr'):>9.2f}{r.median('rec_ssim'):>9.3f}"
              f"{r.median('identity_psnr'):>8.2f}{r.median('plain_psnr'):>8.2f}{r.median('residual_psnr'):>9.2f}"
              f"{r.median('identity_ssim'):>8.3f}{r.median('plain_ssim'):>7.3f}{r.median('residual_ssim'):>7.3f}"
              f"{r.r2:>6.2f}{r.spearman:>6.2f}{r.median('psnr_per_code'):>9.3f}")
        print("  blur codes: " + " ".join(f"{row['plane']}:{row['code']:.2f}" for row in r.planes))
    print(f"ML-VAE score {score.score:.3f} = identity accuracy {score.identity_accuracy:.3f} - blur accuracy "
          f"{score.blur_accuracy:.3f} (chance {score.chance:.3f}, {score.samples} held-out crops)")
    print("(PSNR/SSIM: medians over planes; deblurring against the in-focus plane; dB/code: the PSNR change the "
          "in-focus code brings, per unit of code moved)", file=sys.stderr)
    return 0


COMMANDS = [Command("blur-code-score", "score a blur-code model: reconstruction, deblurring, blur-code linearity "
                    "(R2) and the ML-VAE score, on z-stacks with a known in-focus plane", add_arguments, run)]
