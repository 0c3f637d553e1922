"""The PSF estimator out of fold on real focus series with known z: each series read by an estimator that never
saw its content, and a simulated 100x/1.35 oil check on small fields of the same held-out content.

    python benchmarks/psf_estimator_oof.py --corpus CORPUS --fold-model A=FOLDER --fold-model B=FOLDER
        [--model NAME=FOLDER ...] [--max-um 3.6] [--field 128] [--json OUT]

``CORPUS`` is the folder scripts/build_corpus.py writes (a ``meta.json`` per series gives its fold, focus and z).
A series of fold A is read by the estimator trained on fold B's content and the reverse; a series in neither fold
(the Janelia bead) by both, and the table gives the fold-B reading. ``--model`` adds estimators scored on every
series as they are (e.g. the shipped one). Per series, over the planes within ``--max-um`` of focus: R^2 of the
estimated against the true |z| (um), Spearman of the two, and the median absolute error in um; each plane is read
whole and, where it is larger, from its central ``--field`` pixels. The optics of some series are assumptions
(``SERIES`` says which): they set the conversion from waves to um, not the ranking.

The simulated check takes the in-focus plane of each held-out cell series as the object on a 65 nm grid, images it
through a 100x/1.35 oil objective (520 nm) at each |z| in 0-3.6 um with Poisson noise (1000 photons at the brightest
in-focus pixel), keeps a 128-pixel field and reads it with the other fold's estimator.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from latent_focus.io import read_stack
from latent_focus.methods import load_method
from latent_focus.methods.blur_code.codes import centre
from latent_focus.methods.psf_rl.depth import plane_summary
from latent_focus.methods.psf_rl.training import r2_scores
from latent_focus.optics import add_camera_noise
from latent_focus.optics.parametric import Optics, parametric_psfs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from psf_rl_real import spearman  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: series -> (optics, z step in um where the corpus has none, note)
SERIES = {
    "neubias_wf": (Optics(1.2, 0.46, 1.33, 0.2559), None, "40x/1.2 W, Hoechst, from the file"),
    "dfnn_mito": (Optics(1.1, 0.52, 1.33, 0.1), 0.05, "light sheet; assumed 1.1 W detection, 520 nm, 0.1 um pixels"),
    "dfnn_micro": (Optics(1.1, 0.52, 1.33, 0.1), 0.05, "light sheet; assumed 1.1 W detection, 520 nm, 0.1 um pixels"),
    "epfl_bead": (Optics(1.4, 0.52, 1.515, 0.258), 0.32, "assumed 63x/1.4 oil, 520 nm; downsampled 4x / 2x"),
    "pyotf_bead_na085_air_520nm": (Optics(0.85, 0.52, 1.0, 0.13), 0.3, "0.85 air, 520 nm, 130 nm, 300 nm steps "
                                   "(from the file name)"),
}
EXTRA = {"janelia_bead_560nm": (DATA / "psf_widefield_bead_560nm" / "stack.tif", 50,
                                Optics(1.1, 0.56, 1.33, 0.1003), 0.1,
                                "bead, widefield illumination; assumed 1.1 W detection; 0.1 um pixels and steps "
                                "from the file")}
SIM_OPTICS = Optics(1.35, 0.52, 1.515, 0.065)
SIM_SERIES = ("neubias_wf", "dfnn_mito", "dfnn_micro")


def read(method, plane, optics) -> float:
    return float(plane_summary(method.blur_maps(np.asarray(plane, np.float32), optics, "widefield"))[0])


def scores(est: np.ndarray, true: np.ndarray) -> dict:
    return {"planes": int(len(true)), "r2": r2_scores(est[:, None], true[:, None])[0], "spearman": spearman(est, true),
            "median_abs_error_um": float(np.median(np.abs(est - true)))}


def load(corpus: Path):
    """(name, stack data, |z| um per plane, optics, fold, note) of each evaluation series."""
    out = []
    for name, (optics, step, note) in SERIES.items():
        meta = json.loads((corpus / name / "meta.json").read_text())
        data = read_stack(corpus / name / "stack.tif").data
        z = np.asarray(meta["z_um"]) if meta.get("z_um") else np.arange(len(data)) * step
        out.append((name, data, np.abs(z - z[meta["focus_plane"]]), optics, meta["fold"], note))
    for name, (path, focus, optics, step, note) in EXTRA.items():
        if path.is_file():
            data = read_stack(path).data
            z = np.arange(len(data)) * step
            out.append((name, data, np.abs(z - z[focus]), optics, None, note))
    return out


def simulate(content: np.ndarray, z_um: float, rng: np.random.Generator, side: int = 128) -> np.ndarray:
    """``content`` on the 65 nm grid through :data:`SIM_OPTICS` at ``z_um``, 1000 photons, a ``side`` field."""
    k = min(SIM_OPTICS.support_px(z_um), 2 * side + 1)
    k -= 1 - k % 2
    psf = parametric_psfs(np.array([[z_um, 0.0, 0.0]]), SIM_OPTICS, k)[0]
    obj = centre(np.pad(content.astype(np.float64), side + k, mode="symmetric"), side + k)
    obj = np.clip(obj - np.percentile(obj, 1), 0, None)
    obj /= max(float(np.percentile(obj, 99.9)), 1e-9)
    pad = np.zeros_like(obj)
    pad[:k, :k] = psf
    pad = np.roll(pad, (-(k // 2), -(k // 2)), axis=(0, 1))
    img = np.fft.irfft2(np.fft.rfft2(obj) * np.fft.rfft2(pad), s=obj.shape)
    m = (obj.shape[0] - side) // 2
    img = img[m:m + side, m:m + side]
    return add_camera_noise(np.clip(img, 0, None) * 1000.0, gain=1.0, read_noise_e=1.5, offset=100.0, bit_depth=None,
                            rng=rng)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--fold-model", action="append", default=[], metavar="FOLD=FOLDER", required=True)
    p.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                   help="an estimator scored on every series as is (e.g. psf-widefield=psf-widefield)")
    p.add_argument("--max-um", type=float, default=3.6)
    p.add_argument("--field", type=int, default=128)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    folds = {k: load_method("psf-rl", v, "cpu") for k, v in (a.split("=", 1) for a in args.fold_model)}
    others = {k: load_method("psf-rl", v, "cpu") for k, v in (a.split("=", 1) for a in args.model)}
    other_fold = {"A": "B", "B": "A", None: "B"}
    rows, sim_rows = [], []
    series = load(args.corpus)
    for name, data, absz, optics, fold, note in series:
        sel = np.flatnonzero(absz <= args.max_um)
        readers = {"out of fold": folds[other_fold[fold]], **others}
        for reader, method in readers.items():
            for field in ("whole", f"{args.field} px"):
                if field != "whole" and min(data.shape[1:]) <= args.field:
                    continue
                est = np.array([read(method, data[i] if field == "whole" else centre(data[i], args.field), optics)
                                for i in sel])
                row = {"series": name, "fold": fold, "reader": reader, "field": field, "note": note,
                       **scores(est, absz[sel]),
                       "per_plane": [[round(float(z), 3), round(float(e), 3)] for z, e in zip(absz[sel], est)]}
                rows.append(row)
                print(f"{name} ({reader}, {field}): R2 {row['r2']:.3f}, Spearman {row['spearman']:.3f}, "
                      f"median |error| {row['median_abs_error_um']:.2f} um over {row['planes']} planes", flush=True)
    zs = np.round(np.arange(0.0, 3.61, 0.3), 2)
    by_name = {r[0]: r for r in series}
    for name in SIM_SERIES:
        _, data, absz, _, fold, _ = by_name[name]
        content = data[int(np.argmin(absz))]  # the in-focus plane
        reader = folds[other_fold[fold]]
        rng = np.random.default_rng(5)
        est = np.array([read(reader, simulate(content, float(z), rng), SIM_OPTICS) for z in zs])
        row = {"content": name, **scores(est, zs),
               "per_plane": [[float(z), round(float(e), 3)] for z, e in zip(zs, est)]}
        sim_rows.append(row)
        print(f"simulated 100x/1.35 oil, 128 px, content {name}: R2 {row['r2']:.3f}, "
              f"Spearman {row['spearman']:.3f}, median |error| {row['median_abs_error_um']:.2f} um", flush=True)
    print(f"\nReal series, planes within {args.max_um:g} um of focus\n")
    print("| series | fold | reader | field | planes | R² | Spearman | median abs error (um) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['series']} | {r['fold'] or '-'} | {r['reader']} | {r['field']} | {r['planes']} | {r['r2']:.3f} | "
              f"{r['spearman']:.3f} | {r['median_abs_error_um']:.2f} |")
    print("\nSimulated 100x/1.35 oil, 65 nm pixels, 128-px fields, 0-3.6 um, read out of fold\n")
    print("| content | planes | R² | Spearman | median abs error (um) |\n| --- | --- | --- | --- | --- |")
    for r in sim_rows:
        print(f"| {r['content']} | {r['planes']} | {r['r2']:.3f} | {r['spearman']:.3f} | "
              f"{r['median_abs_error_um']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"real": rows, "simulated_100x": sim_rows}, indent=1))


if __name__ == "__main__":
    main()
