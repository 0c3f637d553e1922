"""The ``latent-focus`` subcommands of the ``latent`` method: synthesize, deblur, adapt, evaluate, calibrate, and
the options ``latent-focus train`` reads for its autoencoder presets."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...terminal import ProgressLine
from ..options import Command, add_common, argument_type, check_two_planes, describe, plane_index, positive_int
from .params import LatentParams

STRENGTHS = [round(0.05 * k, 2) for k in range(1, 21)]  # the deblurring strengths calibrate tries


def _pair_arguments(p: argparse.ArgumentParser, name: str, first: str) -> None:
    p.add_argument("stack", help="TIFF/OME-TIFF z-stack or folder of per-plane TIFFs")
    p.add_argument("-o", "--output", required=True, help="output TIFF (float32, input units)")
    p.add_argument("--planes", nargs=2, type=plane_index, required=True, metavar=tuple(first.split()),
                   help="plane indices (0-based)")
    if name == "deblur":
        fields = {f.name: f for f in LatentParams.specs()}
        p.add_argument("--alpha", nargs="+", type=argument_type(fields["alpha"].metadata["parse"]), default=[None],
                       help="alpha in (0, 1]; several values write a (n, y, x) sweep; default: 1 - d_B/d_C "
                            "from the planes' z positions (plane indices when the stack has none)")
        p.add_argument("--strength", default=LatentParams().strength, metavar="S",
                       type=argument_type(fields["strength"].metadata["parse"]), help=describe(fields["strength"]))
        p.add_argument("--tile", type=int, default=LatentParams().tile, help=describe(fields["tile"]))
    else:
        p.add_argument("--alpha", nargs="+", type=float, required=True,
                       help="alpha in (0, 1]; several values write a (n, y, x) sweep")
        p.add_argument("--tile", type=int, default=LatentParams().tile, help="tile size for large planes (px)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_common(p)


def _adapt_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="the z-stack to deblur (TIFF/OME-TIFF or a folder of per-plane TIFFs)")
    p.add_argument("-o", "--output", required=True, metavar="NAME|PATH",
                   help="a model name, saved in the user models folder (latent-focus models shows it), or a folder "
                        "path (with a slash, or starting with . or ~)")
    p.add_argument("--minutes", type=float, default=2.0, help="time budget (default 2; a GPU runs more steps)")
    p.add_argument("--focus", type=plane_index, default=None,
                   help="the in-focus plane (default: the sharpest by the variance of the Laplacian)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    add_common(p)


def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stacks", nargs="+", help="z-stacks with a known in-focus plane")
    p.add_argument("--focus", nargs="+", type=plane_index, required=True,
                   help="in-focus plane index (one, or one per stack)")
    p.add_argument("--method", action="append", default=None, metavar="NAME",
                   help="also score this restoration method with its defaults (repeatable): one row per method "
                        "next to identity and pixel-space extrapolation")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--max-cases", type=positive_int, default=None, help="limit cases per stack (at least 1)")
    rl = p.add_mutually_exclusive_group()
    rl.add_argument("--optics", nargs="+", type=float, default=None, metavar="VALUE",
                    help="NA WAVELENGTH_UM [IMMERSION_INDEX]: add a Richardson-Lucy column with the Born & Wolf "
                         "PSF of these optics at each plane's defocus (needs z positions)")
    rl.add_argument("--psf", default=None, help="add a Richardson-Lucy column with this PSF z-stack (e.g. a bead)")
    p.add_argument("--pixel-size", type=float, default=None, help="image pixel size (um) when the file does not say")
    p.add_argument("--rl-iterations", type=int, default=30, help="Richardson-Lucy iterations (default 30)")
    add_common(p)


def _calibrate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stacks", nargs="+", help="z-stacks with a known in-focus plane (not those you will evaluate on)")
    p.add_argument("--focus", nargs="+", type=plane_index, required=True,
                   help="in-focus plane index (one, or one per stack)")
    p.add_argument("-o", "--output", required=True, help="model folder to write (the model with its new strength)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    add_common(p)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``latent-focus train`` that only the autoencoder presets (paper, compact, tiny) read."""
    g = p.add_argument_group("paper, compact and tiny presets (latent method)")
    g.add_argument("--regularization", default="direct", choices=("baseline", "indirect", "direct"))
    g.add_argument("--loss", default="l1", choices=("l1", "mse"), help="reconstruction loss")
    g.add_argument("--triplets", default="auto", choices=("auto", "midpoint", "all"),
                   help="midpoint: only 2b = a + c; all: any b between a and c; auto: midpoint when possible")
    g.add_argument("--extrapolation", type=float, default=0.0, metavar="WEIGHT",
                   help="weight of a deblurring term: the sharpest plane decoded from the extrapolated latent "
                        "(Eq. 2); 0, the default, trains exactly the paper's losses")
    g.add_argument("--relative-latent", action="store_true",
                   help="direct regularization: divide the latent L1 (Eq. 4) by the latent distance between "
                        "planes a and c, so the latent cannot meet it by shrinking")


def train_from_args(stacks, args: argparse.Namespace):
    """The training reports of ``latent-focus train`` for an autoencoder preset."""
    from .training import TrainConfig, train

    config = TrainConfig(preset=args.preset, regularization=args.regularization, loss=args.loss,
                         steps=args.steps or 1000, epochs=args.epochs, batch_size=args.batch_size,
                         crop=args.crop or 128, lr=args.lr or 1e-4, seed=args.seed, device=args.device,
                         triplets=args.triplets, extrapolation=args.extrapolation,
                         relative_latent=args.relative_latent)
    return train(stacks, args.output, config, init=args.init, overwrite=args.overwrite)


def _cmd_synthesize(args) -> int:
    from ...engine import LatentFocus, check_tile
    from ...io import check_output_path, check_plane_index, read_stack
    from ...latent import check_alpha
    from ...provenance import write_plain

    tile = check_tile(args.tile)
    out = check_output_path(args.output, args.overwrite, inputs=[args.stack])
    alphas = [check_alpha(a) for a in args.alpha]
    stack = read_stack(args.stack, channel=args.channel, field=args.field, axes=args.axes)
    check_two_planes(stack, "synthesize", args.stack)
    i, j = (check_plane_index(p, stack.n_planes) for p in args.planes)
    if i == j:
        raise InputError(f"--planes needs two different planes; got {i} twice")
    engine = LatentFocus(args.model, args.device, tile=tile)
    result = engine.synthesize(stack.data[i], stack.data[j], alphas, engine.normalizer(stack.data))
    info = {"method": "latent blur synthesis (Eq. 1)", "model": engine.name, "planes": [i, j], "alpha": alphas}
    write_plain(out, result[0] if len(alphas) == 1 else result, stack, info, args.overwrite)
    print(f"wrote {out} (model {engine.name} on {engine.device_name})", file=sys.stderr)
    return 0


def _cmd_deblur(args) -> int:
    """``deblur``: the latent method on one pair, once per alpha (the same result as ``restore --method latent``)."""
    from ...io import check_output_path, check_plane_index, read_stack
    from ...provenance import write_result
    from .. import load_method, run

    params = [LatentParams(alpha=a, strength=args.strength, tile=args.tile) for a in args.alpha]
    out = check_output_path(args.output, args.overwrite, inputs=[args.stack])
    stack = read_stack(args.stack, channel=args.channel, field=args.field, axes=args.axes)
    check_two_planes(stack, "deblur", args.stack)
    b, c = (check_plane_index(p, stack.n_planes) for p in args.planes)
    method = load_method("latent", args.model, args.device)
    results = [run(method.restore(stack, b, p, partner=c)) for p in params]
    path = write_result(out, results, stack, params[0], overwrite=args.overwrite, single=len(results) == 1)
    print(f"wrote {path} (latent on {method.device_name}; {results[0].info['rule']})", file=sys.stderr)
    return 0


def _cmd_adapt(args) -> int:
    from ...io import read_stack
    from ...models import model_argument, model_output
    from .adapt import adapt

    stack = read_stack(args.stack, channel=args.channel, field=args.field, axes=args.axes)
    output = model_output(args.output)
    bar = ProgressLine("adapt")
    last = None
    for progress in adapt(stack, output, args.model, args.minutes, focus=args.focus, device=args.device,
                          overwrite=args.overwrite):
        bar.update(progress)
        last = progress
    bar.close()
    print(f"saved {output}: {args.model or 'default'} adapted to {args.stack} in {last.done} steps "
          f"({last.elapsed_s:.0f} s on {last.device}); deblur with --model {model_argument(output)}", file=sys.stderr)
    return 0


def _cmd_evaluate(args) -> int:
    from ...engine import LatentFocus
    from ...evaluate import check_focus, evaluate_methods, format_methods
    from ...io import read_stack
    from ...models import find_model, model_family
    from .. import get_method
    from .evaluation import evaluate_stack, format_table, summarize, summarize_default_rule

    methods = [get_method(m).name for m in (args.method or [])]
    stacks = [read_stack(s, channel=args.channel, field=args.field, axes=args.axes) for s in args.stacks]
    focus = check_focus(args.focus, len(stacks))
    psf_stack = read_stack(args.psf) if args.psf else None
    psfs = [_rl_psf(args, s, psf_stack) for s in stacks]
    # the paper-style table needs an autoencoder; a model of another method (--method) leaves it the default
    engine = LatentFocus(args.model if model_family(find_model(args.model)) == "autoencoder" else None, args.device)
    t0 = time.perf_counter()
    reports = [evaluate_stack(engine, s, f, args.max_cases, psf, args.rl_iterations)
               for s, f, psf in zip(stacks, focus, psfs)]
    summary = summarize(reports)
    rows = evaluate_methods(methods, stacks, focus, args.model, args.device, args.max_cases) if methods else []
    if args.json:
        print(json.dumps({"model": engine.name, "device": engine.device_name, "stacks": [r.__dict__ for r in reports],
                          "default_rule": summarize_default_rule(reports), "summary": summary, "methods": rows},
                         indent=1))
    else:
        print(format_table(reports, summary, f"{engine.name} ({engine.model_path}) on {engine.device_name}"))
        if rows:
            print("\n" + format_methods(rows))
        print(f"\n{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _cmd_calibrate(args) -> int:
    from dataclasses import replace

    from ...engine import LatentFocus
    from ...evaluate import check_focus
    from ...io import read_stack
    from ...models.modelfile import save_model
    from .evaluation import fit_strength, strength_gains

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} exists; choose another output or pass --overwrite")
    stacks = [read_stack(s, channel=args.channel, field=args.field, axes=args.axes) for s in args.stacks]
    focus = check_focus(args.focus, len(stacks))
    engine = LatentFocus(args.model, args.device)
    if out.resolve() == engine.model_path.resolve():
        raise InputError(f"{out} is the model being calibrated; write the calibrated model to a new folder")
    gains = np.concatenate([strength_gains(engine, s, f, STRENGTHS) for s, f in zip(stacks, focus)])
    best, table = fit_strength(gains, STRENGTHS)
    print(f"{'strength':>9}{'mean gain':>11}{'median':>9}{'worst':>9}   (dB over identity, {len(gains)} pairs)")
    for row in table:
        print(f"{row['strength']:>9.2f}{row['mean_gain_db']:>11.2f}{row['median_gain_db']:>9.2f}"
              f"{row['worst_gain_db']:>9.2f}" + ("   <- best" if row["strength"] == best else ""))
    save_model(out, engine.model, replace(engine.card, deblur_strength={
        "value": best, "objective": "mean PSNR gain over identity when deblurring to the in-focus plane",
        "stacks": [{"source": Path(s.source).name, "focus": f} for s, f in zip(stacks, focus)],
        "pairs": int(len(gains)), "by_strength": table,
    }))
    print(f"saved {out} with deblurring strength {best:.2f}", file=sys.stderr)
    return 0


def _rl_psf(args, stack, psf):
    """The ``defocus -> kernel`` function for evaluate's Richardson-Lucy column, or None without --optics/--psf.

    ``psf`` is the stack read from ``--psf``, when given.
    """
    from ...optics.deconvolution import bead_psf, optics_psf

    if args.optics is None and psf is None:
        return None
    pixel = args.pixel_size or stack.pixel_size_um
    if args.optics is not None:
        if len(args.optics) not in (2, 3):
            raise InputError("--optics takes NA WAVELENGTH_UM [IMMERSION_INDEX], e.g. --optics 0.75 0.55")
        if stack.z_um is None or pixel is None:
            raise InputError(f"{stack.source}: --optics needs the planes' z positions (a z.txt beside the file) "
                             f"and the pixel size (--pixel-size UM)")
        return optics_psf(*args.optics, pixel_size_um=pixel)
    if psf.z_um is not None and psf.pixel_size_um and pixel and stack.z_um is not None:
        return bead_psf(psf.data, psf.z_um, psf.pixel_size_um, pixel)
    if stack.z_um is None:
        return bead_psf(psf.data)
    raise InputError(f"{args.psf}: to match a PSF to a stack with z positions in um, give the PSF's z positions "
                     f"(z.txt) and both pixel sizes (file metadata or --pixel-size)")


COMMANDS = [
    Command("synthesize", "blur synthesis: D(alpha*E(x_A) + (1-alpha)*E(x_C)), A the sharper plane",
            lambda p: _pair_arguments(p, "synthesize", "A C"), _cmd_synthesize),
    Command("deblur", "deblurring: extrapolate from the latents of B and C towards focus (Eq. 2), B sharper",
            lambda p: _pair_arguments(p, "deblur", "B C"), _cmd_deblur),
    Command("adapt", "adapt a model to one z-stack: a short self-supervised fine-tune on its planes",
            _adapt_arguments, _cmd_adapt,
            description="Fine-tune a model for a few minutes on the planes of one z-stack: its sharper planes are "
            "the targets for its blurrier ones, so no in-focus plane is needed. Saves the model in the user models "
            "folder (or at a path) and prints the --model value that uses it."),
    Command("evaluate", "paper-style table: deblurring and blur synthesis vs baselines", _evaluate_arguments,
            _cmd_evaluate),
    Command("calibrate", "fit a model's deblurring strength on z-stacks with a known in-focus plane and write it "
            "with the model to a new folder", _calibrate_arguments, _cmd_calibrate),
]
