"""The thesis-style table of blur-code models (Ritsema 2023, Tables 5.1-5.4) on held-out simulated and real stacks.

    python benchmarks/disentangled_table.py NAME=MODEL [NAME=MODEL ...] [--sim DIR] [--data ../shared/data]
                                             [--latent default] [--rl] [--json OUT]

For each model (e.g. ``ml-vae=runs/ml-vae disentangled=runs/disentangled no-contrastive=... no-cross=...``)
and each data set (the simulated stacks of ``--sim``, written by scripts/make_training_data.py with other
seeds than the training data; the real series below), medians over planes of:

* reconstruction PSNR / SSIM, ``D(E(x))`` against ``x``;
* deblurring PSNR / SSIM: each plane but the focus decoded with the model's in-focus blur code, against
  the real in-focus plane, in plain (``D(c, b_focus)``) and residual (``x + D(c, b_focus) - D(c, b)``)
  decoding, and the gain over the plane as it is (median and worst plane);
* the ML-VAE score (Eq. 4.10) on 64-px crops (one identity per stack and place; classifiers fitted on the
  even planes, scored on the odd ones, 300 full-batch epochs);
* R² and Spearman correlation of the planes' blur codes against their distance from focus (median over
  stacks).

Beside them: identity (the plane as it is), the latent method (``--latent MODEL``) on the same plane with
its blurrier neighbour, and with ``--rl`` Richardson-Lucy with its per-tile PSF estimate (defaults).

Real series (none used to train the models in this repository): NEUBIAS widefield nucleus (focus plane
19), HeLa brightfield (focus plane 3), EPFL bead (focus at its brightest plane; every 4th plane within 12
of focus is deblurred, every plane within 12 enters the linearity), DFNN light-sheet mitochondria (focus
18) and microtubules (focus 11).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from latent_focus.engine import LatentFocus
from latent_focus.errors import InputError
from latent_focus.io import Normalizer, Stack, read_stack
from latent_focus.methods import load_method, run
from latent_focus.methods.blur_code.codes import check_engine
from latent_focus.methods.blur_code.evaluation import model_mlvae_score, score_stack
from latent_focus.metrics import psnr, ssim

REPO = Path(__file__).resolve().parents[1]


class Series:
    """One stack with its focus plane, the planes to deblur and the planes whose codes enter the linearity."""

    def __init__(self, name: str, stack: Stack, focus: int, deblur=None, codes=None):
        self.name, self.stack, self.focus = name, stack, focus
        self.deblur = [p for p in range(stack.n_planes) if p != focus] if deblur is None else list(deblur)
        self.codes = list(range(stack.n_planes)) if codes is None else list(codes)


def real_series(data: Path) -> list[Series]:
    def read(folder):
        return read_stack(data / folder / "stack.tif")

    out = [Series("NEUBIAS widefield nucleus", read("neubias_widefield_nucleus_hoechst"), 19),
           Series("HeLa brightfield", read("brightfield_hela_set1"), 3)]
    bead = read("bead_widefield_epfl")
    focus = int(np.argmax(bead.data.reshape(bead.n_planes, -1).max(axis=1)))
    near = [i for i in range(focus - 12, focus + 13) if 0 <= i < bead.n_planes]
    out.append(Series("EPFL bead", bead, focus, [i for i in near if (i - focus) % 4 == 0 and i != focus], near))
    out.append(Series("DFNN light-sheet mitochondria", read("dfnn_lightsheet_mitochondria"), 18))
    out.append(Series("DFNN light-sheet microtubules", read("dfnn_lightsheet_microtubules"), 11))
    return out


def simulated_series(folder: Path) -> list[Series]:
    recipe = json.loads((folder / "recipe.json").read_text())
    return [Series(r["file"], read_stack(folder / r["file"]), int(np.argmin(np.abs(r["z_um"])))) for r in recipe]


def score_model(engine: LatentFocus, series: list[Series]) -> dict:
    """Every plane row of every series, the linearity per series and the ML-VAE score over all of them."""
    rows, lin = [], []
    for s in series:
        report = score_stack(engine, s.stack, s.focus, s.deblur, s.codes)
        rows += [{"series": s.name, **r} for r in report.planes if r["plane"] in s.deblur]
        lin.append({"series": s.name, "r2": report.r2, "spearman": report.spearman,
                    "codes": {r["plane"]: r["code"] for r in report.planes}})
    mlvae = model_mlvae_score(engine, [s.stack for s in series], [s.codes for s in series])
    return {"planes": rows, "linearity": lin, "mlvae": mlvae._asdict()}


def score_method(name: str, model, series: list[Series]) -> list[dict]:
    """Deblurring rows of a restoration method (the latent method gets each plane's blurrier neighbour)."""
    method = load_method(name, model, "cpu")
    params = method.default_params()
    rows = []
    for s in series:
        norm = Normalizer.from_data(s.stack.data)
        x = norm.normalize(s.stack.data)
        for p in s.deblur:
            partner = None
            if method.input == "pair":
                outer = p + (1 if p > s.focus else -1)
                partner = outer if 0 <= outer < s.stack.n_planes else None
            try:
                out = norm.normalize(run(method.restore(s.stack, p, params, partner=partner)).image)
            except InputError as exc:  # e.g. the method's own focus estimate puts the pair across focus
                rows.append({"series": s.name, "plane": p, "error": str(exc)})
                continue
            rows.append({"series": s.name, "plane": p, "psnr": psnr(x[s.focus], out), "ssim": ssim(x[s.focus], out),
                         "identity_psnr": psnr(x[s.focus], x[p])})
    return rows


def _med(rows, key, where=None):
    vals = [r[key] for r in rows if key in r and np.isfinite(r[key]) and (where is None or r["series"] == where)]
    return float(np.median(vals)) if vals else float("nan")


def _worst_gain(rows, key, where=None):
    vals = [r[key] - r["identity_psnr"] for r in rows if key in r and (where is None or r["series"] == where)]
    return float(np.min(vals)) if vals else float("nan")


def _gain(rows, key, where=None):
    vals = [r[key] - r["identity_psnr"] for r in rows if key in r and (where is None or r["series"] == where)]
    return float(np.median(vals)) if vals else float("nan")


def summary_table(results: dict, baselines: dict, title: str) -> str:
    lines = [f"#### {title}", "",
             "| model | rec PSNR | rec SSIM | deblur PSNR plain | residual | deblur SSIM plain | residual | gain dB "
             "(residual) median / worst | ML-VAE score (id / blur acc.) | R² code vs distance | Spearman | "
             "dB per unit code |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        rows, m = res["planes"], res["mlvae"]
        r2 = np.nanmedian([x["r2"] for x in res["linearity"]])
        rho = np.nanmedian([x["spearman"] for x in res["linearity"]])
        lines.append(f"| {name} | {_med(rows, 'rec_psnr'):.2f} | {_med(rows, 'rec_ssim'):.3f} | "
                     f"{_med(rows, 'plain_psnr'):.2f} | {_med(rows, 'residual_psnr'):.2f} | "
                     f"{_med(rows, 'plain_ssim'):.3f} | {_med(rows, 'residual_ssim'):.3f} | "
                     f"{_gain(rows, 'residual_psnr'):+.2f} / {_worst_gain(rows, 'residual_psnr'):+.2f} | "
                     f"{m['score']:.3f} ({m['identity_accuracy']:.2f} / {m['blur_accuracy']:.2f}) | {r2:.3f} | "
                     f"{rho:.3f} | {_med(rows, 'psnr_per_code'):+.3f} |")
    first = next(iter(results.values()))["planes"]
    lines.append(f"| identity | | | {_med(first, 'identity_psnr'):.2f} | | {_med(first, 'identity_ssim'):.3f} | "
                 "| +0.00 / +0.00 | | | | |")
    for name, rows in baselines.items():
        lines.append(f"| {name} | | | {_med(rows, 'psnr'):.2f} | | {_med(rows, 'ssim'):.3f} | | "
                     f"{_gain(rows, 'psnr'):+.2f} / {_worst_gain(rows, 'psnr'):+.2f} | | | | |")
    return "\n".join(lines)


def series_table(results: dict, baselines: dict, series: list[Series]) -> str:
    names = list(results) + list(baselines)
    lines = ["| series | planes | identity PSNR | " + " | ".join(f"{n} gain median / worst" for n in names)
             + " | " + " | ".join(f"{n} R² / ρ" for n in results) + " |",
             "|---|---|---|" + "---|" * (len(names) + len(results))]
    for s in series:
        first = next(iter(results.values()))["planes"]
        cells = []
        for name in names:
            rows = results[name]["planes"] if name in results else baselines[name]
            key = "residual_psnr" if name in results else "psnr"
            cells.append(f"{_gain(rows, key, s.name):+.2f} / {_worst_gain(rows, key, s.name):+.2f}")
        for name in results:
            lin = next(x for x in results[name]["linearity"] if x["series"] == s.name)
            cells.append(f"{lin['r2']:.2f} / {lin['spearman']:.2f}")
        lines.append(f"| {s.name} | {len(s.deblur)} | {_med(first, 'identity_psnr', s.name):.2f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", metavar="NAME=MODEL", help="blur-code models to score (name=folder)")
    p.add_argument("--sim", type=Path, default=None, help="held-out simulated stacks (make_training_data.py output)")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the real series' folder")
    p.add_argument("--latent", default="default", help="latent model beside them ('' leaves it out)")
    p.add_argument("--rl", action="store_true", help="also Richardson-Lucy (per-tile PSF estimate)")
    p.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    args = p.parse_args(argv)
    pairs = [m.split("=", 1) if "=" in m else (Path(m).name, m) for m in args.models]
    try:
        engines = {name: check_engine(LatentFocus(folder, "cpu"), folder) for name, folder in pairs}
        sets = [("real series", real_series(args.data))]
        if args.sim is not None:
            sets.insert(0, (f"held-out simulated stacks ({args.sim.name})", simulated_series(args.sim)))
    except (InputError, FileNotFoundError) as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    out = {}
    t0 = time.perf_counter()
    for title, series in sets:
        results = {name: score_model(engine, series) for name, engine in engines.items()}
        baselines = {}
        if args.latent:
            baselines["latent (blurrier neighbour)"] = score_method("latent", args.latent, series)
        if args.rl:
            baselines["richardson-lucy"] = score_method("richardson-lucy", None, series)
        print(summary_table(results, baselines, title) + "\n")
        print(series_table(results, baselines, series) + "\n")
        out[title] = {"models": results, "baselines": baselines}
        print(f"({time.perf_counter() - t0:.0f} s so far)", file=sys.stderr)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
