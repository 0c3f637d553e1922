"""The ``latent-focus`` subcommands of ``psf-rl``: train-psf, blur-map and calibrate-depth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...progress import Progress
from ...terminal import ProgressLine
from ..options import Command, add_axes

BRIGHTFIELD_PHOTONS = (500.0, 30000.0)  # photons per pixel of clear background in brightfield training


def _train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("content", nargs="+", help="z-stacks of in-focus content (e.g. cells3d, a confocal stack): with "
                   "--focus the planes around each stack's focus, else planes whose 99th percentile reaches 30 %% "
                   "of the stack's brightest")
    p.add_argument("--focus", type=int, nargs="+", default=None, metavar="N",
                   help="the in-focus plane (0-based) of each content stack, in order")
    p.add_argument("--focus-range", type=int, default=1, metavar="K",
                   help="with --focus, also take the K planes either side of focus (default 1)")
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
    add_axes(p)


def _train(args: argparse.Namespace) -> int:
    from ...io import read_stack
    from .simulation import SimulationRecipe
    from .training import EstimatorTrainConfig, train_estimator

    waves = args.max_waves if args.max_waves is not None else (20.0 if args.modality == "brightfield" else 10.0)
    if not 0 < waves <= 100:
        raise InputError(f"--max-waves must be in (0, 100]; got {waves}")
    photons = BRIGHTFIELD_PHOTONS if args.modality == "brightfield" else SimulationRecipe.photons
    config = EstimatorTrainConfig(modality=args.modality, samples=args.samples, val_samples=args.val_samples,
                                  steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                  device=args.device, focus=args.focus, focus_range=args.focus_range,
                                  recipe=SimulationRecipe(modality=args.modality, max_waves=waves,
                                                                              photons=photons))
    config.check()
    content = [read_stack(path, channel=args.channel, axes=args.axes) for path in args.content]
    bar = ProgressLine("train-psf")
    last = None
    for p in train_estimator(content, args.output, config, overwrite=args.overwrite, keep_data=args.keep_data):
        bar.update(p)
        last = p
    bar.close()
    if last is None:
        print(f"{args.output} is already trained with this recipe; nothing to do (pass --overwrite to start again)",
              file=sys.stderr)
    else:
        print(f"saved {args.output} after {last.done} steps on {last.device}", file=sys.stderr)
    return 0


def _optics_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--optics", nargs="+", type=float, default=None, metavar="VALUE",
                   help="NA WAVELENGTH_UM [IMMERSION_INDEX] of the objective (default: the calibration's with "
                        "--depth, else the usual objective for the pixel size, e.g. 1.4 0.52 1.515 for a 65 nm "
                        "pixel, else 0.75 0.52 1.0)")
    p.add_argument("--pixel-size", type=float, default=None, metavar="UM",
                   help="pixel size in um (default: the file's, else 0.1, or the calibration's with --depth)")
    p.add_argument("--modality", default="widefield", choices=("widefield", "brightfield"))
    p.add_argument("--model", "-m", default=None, help="estimator model folder or name (default: the shipped one)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--channel", type=int, default=None, help="channel of a (z, c, y, x) stack")
    p.add_argument("--field", default=None, help="field name when a folder holds several")
    add_axes(p)


def _optics(args, stack, fallback: dict | None = None):
    """The optics from ``--optics`` and ``--pixel-size``, else the file, else ``fallback``, else the defaults."""
    from ...optics.parametric import Optics
    from . import DEFAULT_PIXEL_UM, assumed_optics

    if args.optics is not None and len(args.optics) not in (2, 3):
        raise InputError("--optics takes NA WAVELENGTH_UM [IMMERSION_INDEX], e.g. --optics 1.2 0.46 1.33")
    if args.pixel_size is not None and not args.pixel_size > 0:
        raise InputError(f"--pixel-size must be a positive number of um; got {args.pixel_size}")
    fallback = fallback or {}
    pixel = args.pixel_size or stack.pixel_size_um or fallback.get("pixel_size_um")
    if args.optics is not None:
        na, wl, *rest = args.optics
        n = rest[0] if rest else 1.0
    elif fallback:
        na, wl, n = fallback["na"], fallback["wavelength_um"], fallback["n_immersion"]
    else:
        na, wl, n = assumed_optics(pixel)
    return Optics(na, wl, n, pixel or DEFAULT_PIXEL_UM)


def _map_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="a 2-D image, or a z-stack with --plane")
    p.add_argument("-o", "--output", required=True, help="output TIFF: (3, y, x) float32 maps")
    p.add_argument("--plane", type=int, default=None, help="the plane of a z-stack to map (0-based)")
    p.add_argument("--depth", default=None, metavar="CALIBRATION",
                   help="a calibration from latent-focus calibrate-depth: the first map becomes depth in um")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _optics_arguments(p)


def _blur_map(args: argparse.Namespace) -> int:
    from ...io import check_output_path, check_plane_index, read_stack
    from ...provenance import write_plain
    from .. import load_method
    from .depth import DepthCalibration

    out = check_output_path(args.output, args.overwrite, inputs=[args.input] + ([args.depth] if args.depth else []))
    calibration = DepthCalibration.read(args.depth) if args.depth else None
    stack = read_stack(args.input, channel=args.channel, field=args.field, axes=args.axes)
    if stack.n_planes > 1 and args.plane is None:
        raise InputError(f"{args.input} holds {stack.n_planes} planes; pass --plane N to map one of them")
    plane = check_plane_index(args.plane if args.plane is not None else 0, stack.n_planes)
    optics = _optics(args, stack, calibration.optics if calibration else None)
    if calibration is not None:
        calibration.check_optics(optics, args.input)
        if calibration.modality != args.modality:
            raise InputError(f"the depth calibration is for {calibration.modality} planes; pass --modality "
                             f"{calibration.modality}")
    method = load_method("psf-rl", args.model, args.device)
    maps = method.blur_maps(stack.data[plane], optics, args.modality)
    data = maps.stack()
    first = "signed defocus (um)" if maps.signed else "|defocus| (um)"
    if calibration is not None:
        data[0] = calibration.depth(maps)
        first = "signed depth (um)" if (calibration.signed or maps.signed) else "unsigned depth (um)"
    info = {"method": "psf-rl blur map", "plane": plane, "modality": args.modality, "device": method.device_name,
            "planes": [first, "astigmatism 0 deg (waves)", "astigmatism 45 deg (waves)"],
            "optics": {"na": optics.na, "wavelength_um": optics.wavelength_um, "n_immersion": optics.n_immersion,
                       "pixel_size_um": optics.pixel_size_um},
            "depth_calibration": Path(args.depth).name if args.depth else None}
    write_plain(out, data, stack, info, args.overwrite)
    print(f"wrote {out}: {first}, median {float(np.median(data[0])):.2f}; astigmatism (waves) as planes 2 and 3",
          file=sys.stderr)
    return 0


def _calibrate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="a bead or cell z-stack of the microscope, with z positions (z.txt or metadata)")
    p.add_argument("-o", "--output", required=True, help="calibration file to write (JSON)")
    p.add_argument("--focus", type=int, default=None, help="the in-focus plane (default: the sharpest plane)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing calibration file")
    _optics_arguments(p)


def _calibrate(args: argparse.Namespace) -> int:
    from ...focus import find_focus
    from ...io import check_plane_index, read_stack
    from .. import load_method
    from .depth import fit_calibration, plane_summary

    out = Path(args.output)
    if out.suffix.lower() != ".json":
        raise InputError(f"the calibration file {out} must end in .json")
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} already exists; choose another output or pass --overwrite")
    if not out.parent.exists():
        raise InputError(f"the folder {out.parent} does not exist; create it or choose another output")
    stack = read_stack(args.stack, channel=args.channel, field=args.field, axes=args.axes)
    if stack.z_um is None or not np.isfinite(stack.z_um).all():
        raise InputError(f"{args.stack} records no z positions; put a z.txt (plane index and z in um) beside it")
    if stack.n_planes < 5:
        raise InputError(f"{args.stack} holds {stack.n_planes} planes; pass a z-stack through focus of at least 5")
    if args.focus is not None:
        focus, how = check_plane_index(args.focus, stack.n_planes), "given (--focus)"
    else:
        focus, how = find_focus(stack.data), "sharpest plane (variance of the Laplacian)"
    optics = _optics(args, stack)
    method = load_method("psf-rl", args.model, args.device)
    bar = ProgressLine("calibrate-depth")
    estimates = []
    for i in range(stack.n_planes):
        estimates.append(plane_summary(method.blur_maps(stack.data[i], optics, args.modality)))
        bar.update(Progress(i + 1, stack.n_planes, f"plane {i}", unit="plane"))
    bar.close()
    estimator = method.estimator(args.modality)
    max_um = float(optics.defocus_um(_max_waves(method, args.modality)))
    cal = fit_calibration(stack.z_um, np.array(estimates), focus, args.modality, optics, max_um, how,
                          Path(args.stack).name, estimator.name)
    cal.write(out)
    side = (f"signed by astigmatism ({cal.sign_agreement:.0%} of planes on the right side)" if cal.signed else
            "unsigned (no astigmatism tells the side)" if args.modality == "widefield" else "signed (brightfield)")
    fit = (f"z = {cal.scale:.3f} x estimate {cal.offset:+.3f} um" if args.modality == "brightfield" else
           f"|z|^2 = {cal.scale:.3f} x estimate^2 {cal.offset:+.3f} um^2")
    print(f"wrote {out}: {fit}, rms {cal.residual_um:.2f} um, {side}; focus plane {focus} ({how})", file=sys.stderr)
    return 0


def _max_waves(method, modality: str) -> float:
    from .jobs import max_defocus_waves

    return max_defocus_waves(method.estimator(modality).card)


COMMANDS = [
    Command("train-psf", "train the psf-rl PSF estimator on simulated patches of real in-focus content "
            "(seeded; started again, the same command resumes)", _train_arguments, _train),
    Command("blur-map", "map the estimated |defocus| (um) and astigmatism (waves) of one plane; with --depth, "
            "signed depth from a calibration", _map_arguments, _blur_map),
    Command("calibrate-depth", "fit the depth calibration of a microscope from a bead or cell z-stack through "
            "focus", _calibrate_arguments, _calibrate),
]
