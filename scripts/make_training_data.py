"""Build the simulated defocus z-stacks the shipped models are trained on.

``--optics narrow`` (the first models' data): in-focus content from planes of the scikit-image ``cells3d``
nuclei stack (BSD-3-Clause), 0.26 um pixels, NA 0.4-0.95 in air. ``--optics wide``: content from
:func:`latent_focus.specimens.random_specimen` (procedural puncta, filaments and cells, and ``cells3d``
planes) over air, water and oil objectives of NA 0.3-1.45, emission 0.42-0.70 um, pixels of 0.15-0.6
of lambda/NA (0.06-0.7 um) and plane spacings of 0.3-2 depths of field. Widefield
fluorescence stacks use scalar Born-Wolf / Gibson-Lanni PSFs or the measured widefield bead PSF
(Janelia, BSD-style licence); brightfield stacks propagate a weak phase/amplitude object built from
the same content. Every stack gets its own optics, z spacing, focus offset and camera noise, drawn
from a seeded generator; ``recipe.json`` in the output folder lists them all.

    python scripts/make_training_data.py OUT --cells3d PATH --bead PATH --widefield 48 --brightfield 24
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tifffile

from latent_focus.io import read_stack
from latent_focus.simulate import defocus_stack
from latent_focus.specimens import random_specimen

#: immersion media of ``--optics wide``: name, refractive index, NA range and share of the stacks
IMMERSIONS = (("air", 1.0, (0.3, 0.95), 0.35), ("water", 1.333, (0.8, 1.27), 0.25), ("oil", 1.515, (1.2, 1.45), 0.4))


def _content(cells3d: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    k = int(rng.integers(8, len(cells3d) - 8))
    img = np.rot90(cells3d[k], int(rng.integers(4)))
    img = img[:, ::-1] if rng.integers(2) else img
    img = img - np.percentile(img, 2)
    return np.clip(img, 0, None) ** rng.uniform(0.8, 1.25), k


def _planes(rng: np.random.Generator, dz: float, n: int = 9) -> np.ndarray:
    shift = int(rng.integers(-2, 3))  # focus not always in the middle
    return (np.arange(n) - n // 2 + shift) * dz


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--cells3d", type=Path, required=True, help="cells3d nuclei stack (z, y, x)")
    p.add_argument("--bead", type=Path, default=None, help="--optics narrow: measured widefield bead stack with z.txt")
    p.add_argument("--widefield", type=int, default=48)
    p.add_argument("--brightfield", type=int, default=24)
    p.add_argument("--brightfield-dz", type=float, nargs=2, default=(1.0, 4.0), metavar=("MIN", "MAX"),
                   help="range of the brightfield plane spacing in um (9 planes per stack)")
    p.add_argument("--brightfield-condenser", type=float, nargs=2, default=(0.1, 0.4), metavar=("MIN", "MAX"),
                   help="range of the brightfield condenser NA")
    p.add_argument("--brightfield-phase", type=float, nargs=2, default=(0.3, 1.5), metavar=("MIN", "MAX"),
                   help="range of the brightfield objects' peak phase in radians")
    p.add_argument("--brightfield-bandwidth", type=float, default=0.0, metavar="UM",
                   help="brightfield white light: average 5 wavelengths over 0.55 um -+ UM/2 (0: monochromatic)")
    p.add_argument("--brightfield-shading", type=float, default=0.0, metavar="MAX",
                   help="uneven brightfield illumination: a ramp of up to -+MAX, drawn per stack")
    p.add_argument("--brightfield-8bit", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of brightfield stacks recorded by an 8-bit camera (clear background at 120-200)")
    p.add_argument("--widefield-photons", type=float, nargs=2, default=(300.0, 6000.0), metavar=("MIN", "MAX"),
                   help="range of the widefield peak photon count, drawn log-uniformly (more photons, less noise)")
    p.add_argument("--optics", choices=("narrow", "wide"), default="narrow",
                   help="narrow: the first models' optics and cells3d content; wide: air/water/oil objectives of "
                        "NA 0.3-1.45 and procedural specimens (the other range options apply to narrow only)")
    p.add_argument("--size", type=int, default=256, help="--optics wide: plane size in pixels")
    p.add_argument("--seed", type=int, default=2023)
    args = p.parse_args(argv)
    for option in ("brightfield_dz", "widefield_photons", "brightfield_condenser", "brightfield_phase"):
        low, high = getattr(args, option)
        if not 0 < low <= high:
            p.error(f"--{option.replace('_', '-')} needs 0 < MIN <= MAX; got {low:g} {high:g}")

    rng = np.random.default_rng(args.seed)
    cells = read_stack(args.cells3d).data
    if args.optics == "wide":
        args.out.mkdir(parents=True, exist_ok=True)
        return _write_wide(args, cells, rng)
    if args.bead is None:
        p.error("--optics narrow needs --bead (a measured widefield bead stack)")
    bead = read_stack(args.bead)
    args.out.mkdir(parents=True, exist_ok=True)
    recipe = []
    px = 0.26
    for i in range(args.widefield + args.brightfield):
        img, plane = _content(cells, rng)
        if i < args.widefield:
            kind = ["born_wolf", "gibson_lanni", "bead"][int(rng.integers(3))]
            na = float(rng.uniform(0.4, 0.95))
            dz = float(rng.uniform(0.3, 1.2))
            z = _planes(rng, dz)
            wavelength = float(rng.uniform(0.45, 0.62))  # drawn before the photons: same stacks for a seed
            photons = float(np.exp(rng.uniform(*np.log(args.widefield_photons))))
            params = dict(modality="widefield", na=na, wavelength_um=wavelength,
                          n_immersion=1.0, pixel_size_um=px, photons=photons,
                          background_photons=float(rng.uniform(10, 300)), read_noise_e=float(rng.uniform(1, 3)))
            if kind == "gibson_lanni":
                params.update(psf="gibson_lanni", n_sample=1.33, depth_um=float(rng.uniform(0, 10)))
            elif kind == "bead":  # keep every plane inside the measured stack's z range
                z = z * min(1.0, 4.5 / np.abs(z).max())
                dz = float(z[1] - z[0])
                params.update(psf=bead.data, psf_z_um=bead.z_um, psf_pixel_um=0.1003)
        else:
            kind = "brightfield"
            dz = float(rng.uniform(*args.brightfield_dz))
            z = _planes(rng, dz)
            params = dict(modality="brightfield", na=float(rng.uniform(0.3, 0.75)),
                          na_condenser=float(rng.uniform(*args.brightfield_condenser)), wavelength_um=0.55,
                          pixel_size_um=px, phase_rad=float(rng.uniform(*args.brightfield_phase)),
                          absorption=float(rng.uniform(0.0, 0.1)), photons=float(rng.uniform(3000, 20000)),
                          read_noise_e=float(rng.uniform(1, 3)))
            if args.brightfield_bandwidth > 0:
                params["bandwidth_um"] = args.brightfield_bandwidth
            if args.brightfield_shading > 0:
                params["shading"] = float(rng.uniform(0, args.brightfield_shading))
            if args.brightfield_8bit > 0 and rng.uniform() < args.brightfield_8bit:
                params.update(bit_depth=8, offset=0.0, gain=float(rng.uniform(120, 200)) / params["photons"])
        stack = defocus_stack(img, z, seed=int(rng.integers(2**31)), **params)
        name = f"{kind}_{i:03d}.tif"
        tifffile.imwrite(args.out / name, stack.astype(np.float32), imagej=True,
                         resolution=(1 / px, 1 / px), metadata={"spacing": dz, "unit": "um", "axes": "ZYX"})
        recipe.append({"file": name, "kind": kind, "cells3d_plane": plane, "z_um": z.tolist(),
                       **{k: v for k, v in params.items() if k not in ("psf", "psf_z_um")}})
        print(name, kind, f"dz={dz:.2f}", flush=True)
    (args.out / "recipe.json").write_text(json.dumps(recipe, indent=1))


def _wide_widefield(rng: np.random.Generator) -> tuple[dict, float]:
    names, shares = [m[0] for m in IMMERSIONS], [m[3] for m in IMMERSIONS]
    _, n, (lo, hi), _ = IMMERSIONS[names.index(rng.choice(names, p=shares))]
    na = float(rng.uniform(lo, hi))
    wavelength = float(rng.uniform(0.42, 0.70))
    px = float(np.clip(np.exp(rng.uniform(np.log(0.15), np.log(0.6))) * wavelength / na, 0.06, 0.7))
    params = dict(modality="widefield", na=na, wavelength_um=wavelength, n_immersion=n, pixel_size_um=px,
                  photons=float(np.exp(rng.uniform(np.log(80), np.log(20000)))),
                  background_photons=float(rng.uniform(5, 300)), read_noise_e=float(rng.uniform(1, 3)))
    if n > 1.4 and rng.uniform() < 0.5:  # oil into an aqueous sample: spherical aberration with depth
        params.update(psf="gibson_lanni", n_sample=1.33, depth_um=float(rng.uniform(0, 8)))
    return params, wavelength * n / na ** 2


def _wide_brightfield(rng: np.random.Generator) -> tuple[dict, float]:
    na = float(rng.uniform(0.2, 0.95))
    px = float(np.clip(np.exp(rng.uniform(np.log(0.2), np.log(0.6))) * 0.55 / na, 0.1, 0.7))
    params = dict(modality="brightfield", na=na, na_condenser=float(rng.uniform(0.15, 0.7)) * na,
                  wavelength_um=0.55, bandwidth_um=float(rng.uniform(0, 0.2)), pixel_size_um=px,
                  phase_rad=float(rng.uniform(0.2, 1.5)), absorption=float(rng.uniform(0.0, 0.15)),
                  photons=float(rng.uniform(2000, 20000)), read_noise_e=float(rng.uniform(1, 3)),
                  shading=float(rng.uniform(0, 0.1)))
    return params, 0.55 / na ** 2


def _write_wide(args, cells: np.ndarray, rng: np.random.Generator) -> None:
    """``--optics wide``: stacks of 9-13 planes spaced 0.3-2 depths of field, focus anywhere in the middle half."""
    middle = cells[len(cells) // 4: 3 * len(cells) // 4]
    recipe = []
    for i in range(args.widefield + args.brightfield):
        kind = "widefield" if i < args.widefield else "brightfield"
        params, dof = (_wide_widefield if kind == "widefield" else _wide_brightfield)(rng)
        img, specimen = random_specimen(args.size, rng, middle)
        n = int(rng.integers(9, 14))
        dz = float(np.exp(rng.uniform(np.log(0.3), np.log(2.0)))) * dof
        z = (np.arange(n) - n // 2 + int(rng.integers(-(n // 4), n // 4 + 1))) * dz
        stack = defocus_stack(img, z, seed=int(rng.integers(2**31)), **params)
        name = f"{kind}_{i:03d}.tif"
        px = params["pixel_size_um"]
        tifffile.imwrite(args.out / name, stack.astype(np.float32), imagej=True,
                         resolution=(1 / px, 1 / px), metadata={"spacing": dz, "unit": "um", "axes": "ZYX"})
        recipe.append({"file": name, "kind": kind, "specimen": specimen, "z_um": z.tolist(),
                       "dz_depths_of_field": dz / dof, **params})
        print(name, kind, specimen, f"NA={params['na']:.2f} px={px:.3f} dz={dz:.2f}", flush=True)
    (args.out / "recipe.json").write_text(json.dumps(recipe, indent=1))


if __name__ == "__main__":
    main()
