"""Compare models on real defocus series: deblurring and blur synthesis next to identity and pixel maths.

    python benchmarks/evaluate_models.py MODEL [MODEL ...] [--data ../shared/data] [--json OUT]

Series (none used for training the shipped models): the brightfield HeLa field (focus plane 3) and the
widefield EPFL bead (focus at its brightest plane); or, with ``--sim DIR``, held-out simulated stacks.
On the real series deblurring also sits beside Richardson-Lucy: HeLa with the Born & Wolf PSF of a
40x/0.75 air objective at 550 nm and 0.2005 um pixels (incoherent widefield optics, which brightfield is
not: a classical reference, not a model of this microscope), the bead with the theoretical PSF shipped
with it (same sampling, defocus counted in planes). Prints one table per model and a summary table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tifffile

from latent_focus.engine import LatentFocus
from latent_focus.errors import InputError
from latent_focus.evaluate import evaluate_stack, format_table, summarize
from latent_focus.io import Stack, read_stack
from latent_focus.methods.richardson_lucy.deconvolution import bead_psf, optics_psf

REPO = Path(__file__).resolve().parents[1]


def real_series(data: Path) -> list[tuple[str, Stack, int, object]]:
    """(name, stack, focus plane, defocus -> PSF) of the real series."""
    hela = read_stack(data / "brightfield_hela_set1" / "stack.tif")
    bead = read_stack(data / "bead_widefield_epfl" / "stack.tif")
    focus = int(np.argmax(bead.data.reshape(len(bead.data), -1).max(axis=1)))
    # every 4th plane on both sides of the bead's focus, 7 planes
    idx = [i for i in range(focus - 12, focus + 13, 4) if 0 <= i < bead.n_planes]
    bead = Stack(bead.data[idx], np.asarray(idx, float), None, bead.dtype, str(data / "bead_widefield_epfl"))
    bead_kernel = tifffile.imread(data / "bead_widefield_epfl" / "theoretical_psf_kernel.tif")
    return [("brightfield HeLa", hela, 3, optics_psf(0.75, 0.55, 1.0, 0.2005)),
            ("widefield bead", bead, idx.index(focus), bead_psf(bead_kernel))]


def simulated_series(folder: Path) -> list[tuple[str, Stack, int, None]]:
    """Held-out stacks written by scripts/make_training_data.py (focus = the plane at z = 0)."""
    recipe = json.loads((folder / "recipe.json").read_text())
    return [(r["file"], read_stack(folder / r["file"]), int(np.argmin(np.abs(r["z_um"]))), None) for r in recipe]


def load_series(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list:
    """The series ``--sim`` or ``--data`` names; a missing folder or file stops with a usage error (exit 2)."""
    if args.sim is not None and not (args.sim / "recipe.json").is_file():
        parser.error(f"--sim {args.sim}: no recipe.json there; pass a folder written by scripts/make_training_data.py")
    try:
        return simulated_series(args.sim) if args.sim is not None else real_series(args.data)
    except (FileNotFoundError, InputError) as err:
        where = f"--sim {args.sim}" if args.sim is not None else f"--data {args.data}"
        parser.error(f"{where}: {err}")


def load_engine(parser: argparse.ArgumentParser, model: str, device: str) -> LatentFocus:
    """The model's engine; an unknown model or device stops with the library's message (exit 2)."""
    try:
        return LatentFocus(model, device)
    except InputError as err:
        parser.error(str(err))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--sim", type=Path, default=None,
                   help="evaluate on simulated held-out stacks in this folder instead of the real series")
    args = p.parse_args(argv)
    engines = {model: load_engine(p, model, args.device) for model in args.models}
    series = load_series(p, args)
    results = {}
    for model, engine in engines.items():
        reports = [evaluate_stack(engine, stack, focus, psf=psf) for _, stack, focus, psf in series]
        for (name, *_), rep in zip(series, reports):
            rep.source = name
        summary = summarize(reports)
        print(format_table(reports, summary, f"{model} on {engine.device_name}"), "\n", flush=True)
        results[str(model)] = {"summary": summary, "stacks": [r.__dict__ for r in reports]}
    keys = ["deblur_psnr", "residual_psnr", "identity_psnr", "pixel_psnr", "rl_psnr", "deblur_gain_over_identity_db",
            "deblur_worst_gain_db", "strength", "calibrated_psnr", "calibrated_gain_over_identity_db",
            "calibrated_worst_gain_db", "deblur_ssim", "calibrated_ssim", "identity_ssim", "rl_ssim",
            "synthesis_psnr", "synthesis_pixel_psnr", "lds", "apd", "apd_spaced"]
    short = {k: k.replace("deblur_", "d_").replace("synthesis_", "s_").replace("calibrated_", "c_")
             .replace("_over_identity_db", "").replace("_gain_db", "")[:12] for k in keys}
    print("model".ljust(28) + "".join(short[k].rjust(13) for k in keys))
    for model, r in results.items():
        print(Path(model).name.ljust(28) + "".join(f"{r['summary'][k]:13.3f}" for k in keys))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
