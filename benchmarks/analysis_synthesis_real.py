"""Score single-plane restoration on real defocus series with a known in-focus plane.

Every plane of each series (or every ``--every``-th) is restored on its own and compared with the real
in-focus plane (PSNR as in ``metrics.psnr`` and SSIM, on per-stack normalised intensities, 0.1/99.9
percentiles), next to the plane as it is (identity), blind Richardson-Lucy (``richardson-lucy`` with its
per-tile PSF estimate, 30 iterations) and the ``latent`` method (each plane with its neighbour further
from focus, the shipped model). Large planes are scored on a centre crop (``--crop``).

    python benchmarks/analysis_synthesis_real.py [--model FOLDER] [--methods ...] [--json OUT.json]
        [--merge EARLIER.json]

``--merge`` adds the columns of an earlier run (same series, crop and planes), so that slow baselines are
computed once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from latent_focus.io import Normalizer, Stack, read_stack
from latent_focus.methods import load_method, run
from latent_focus.metrics import psnr, ssim

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# folder, in-focus plane (None: the brightest plane), what it is
SERIES = [
    ("neubias_widefield_nucleus_hoechst", 19, "widefield nucleus, 40x/1.2 W, 0.5 um steps"),
    ("bead_widefield_epfl", None, "widefield 2.5 um bead (EPFL), focus at the brightest plane"),
    ("brightfield_hela_set1", 3, "brightfield HeLa, 40x air, -25 to +25 um"),
    ("dfnn_lightsheet_mitochondria", 18, "light-sheet mitochondria, 0.05 um steps"),
    ("dfnn_lightsheet_microtubules", 11, "light-sheet microtubules, 0.05 um steps"),
]


def centre_crop(stack: Stack, size: int) -> Stack:
    h, w = stack.data.shape[1:]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return Stack(np.ascontiguousarray(stack.data[:, y0:y0 + size, x0:x0 + size]), stack.z_um, stack.pixel_size_um,
                 stack.dtype, stack.source)


def restore_all(name: str, stack: Stack, planes: list[int], model: str | None) -> dict[int, np.ndarray]:
    """Each plane restored by method ``name`` (pair methods: with the neighbour further from focus)."""
    method = load_method(name, model if name == "analysis-synthesis" else None, "cpu")
    params = method.default_params()
    results = run(method.restore_planes(stack, planes, params))
    return {p: r.image for p, r in zip(planes, results)}


def score_series(folder: str, focus: int | None, args, focus_rows: list) -> list[dict]:
    stack = read_stack(DATA / folder / "stack.tif")
    if focus is None:
        focus = int(np.argmax(stack.data.reshape(stack.n_planes, -1).max(axis=1)))
    stack = centre_crop(stack, args.crop)
    norm = Normalizer.from_data(stack.data)
    target = norm.normalize(stack.data[focus])
    every = args.every if stack.n_planes > 10 else 1
    planes = [p for p in range(stack.n_planes) if (p - focus) % every == 0]  # the in-focus plane too
    outputs = {"identity": {p: stack.data[p] for p in planes}}
    for name in args.methods:
        t0 = time.perf_counter()
        outputs[name] = restore_all(name, stack, planes, args.model)
        print(f"  {folder}: {name} {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    rows = []
    for p in planes:
        row = {"series": folder, "plane": p, "focus": focus, "offset": p - focus}
        if p == focus:  # how much each method changes the in-focus plane itself (PSNR of output vs input)
            row.update({f"{n}_focus_change_psnr": psnr(target, norm.normalize(outputs[n][p])) for n in args.methods})
            focus_rows.append(row)
            continue
        for name, out in outputs.items():
            x = norm.normalize(out[p])
            row[f"{name}_psnr"] = psnr(target, x)
            row[f"{name}_ssim"] = ssim(target, x)
        rows.append(row)
    return rows


def table(rows: list[dict], names: list[str]) -> str:
    head = f"{'series':<36}{'planes':>7}" + "".join(f"{n[:16]:>18}" for n in names)
    lines = ["median PSNR (dB) / SSIM against the real in-focus plane", head]
    groups = {}
    for r in rows:
        groups.setdefault(r["series"], []).append(r)
    groups["all"] = rows
    for series, rs in groups.items():
        cells = "".join(f"{np.median([r[n + '_psnr'] for r in rs]):>10.2f} / "
                        f"{np.median([r[n + '_ssim'] for r in rs]):.3f}" for n in names)
        lines.append(f"{series:<36}{len(rs):>7}{cells}")
    for n in names[1:]:
        gains = np.array([r[n + "_psnr"] - r["identity_psnr"] for r in rows])
        lines.append(f"{n}: gain over identity median {np.median(gains):+.2f} dB, worst {gains.min():+.2f} dB, "
                     f"{(gains > 0).sum()} of {len(gains)} planes closer than the input, "
                     f"{(gains < -0.5).sum()} more than 0.5 dB further")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="analysis-synthesis model (default: the shipped one)")
    p.add_argument("--methods", nargs="+", default=["analysis-synthesis", "richardson-lucy", "latent"])
    p.add_argument("--series", nargs="+", default=[s[0] for s in SERIES])
    p.add_argument("--crop", type=int, default=256, help="score the centre crop of this side (px)")
    p.add_argument("--every", type=int, default=1, help="score every n-th plane from focus (series of more than 10)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--merge", type=Path, default=None, help="JSON of an earlier run whose method columns to add")
    args = p.parse_args(argv)
    rows, focus_rows = [], []
    for folder, focus, _ in SERIES:
        if folder in args.series:
            rows += score_series(folder, focus, args, focus_rows)
    names = ["identity", *args.methods]
    if args.merge:
        earlier = json.loads(args.merge.read_text())
        extra = [m for m in earlier["methods"] if m not in names]
        by_key = {(r["series"], r["plane"]): r for r in earlier["rows"]}
        for r in rows:
            r.update({k: v for k, v in by_key[(r["series"], r["plane"])].items() if k.split("_")[0] in extra})
        names += extra
    print(table(rows, names))
    for r in focus_rows:
        print(f"in-focus plane {r['plane']} of {r['series']}: output vs input PSNR "
              + ", ".join(f"{n} {r[n + '_focus_change_psnr']:.2f} dB" for n in args.methods))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "methods": names[1:],
                                         "rows": rows, "in_focus": focus_rows}, indent=1))


if __name__ == "__main__":
    main()
