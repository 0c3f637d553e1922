"""Which rule for the deblurring step? Replay a family of rules on the pairs a benchmark run decoded.

    python benchmarks/evaluate_models.py default --strengths 0.1 0.2 0.3 0.5 --json grid.json
    python benchmarks/rule_study.py grid.json [--top 12]

The default rule (``latent_focus.latent.default_step``) decides from two noise-normalised measurements of a
pair, the B-C difference ``d`` and the reconstruction residual of B ``r`` (both in the benchmark's
``auto_rule`` text): no step where ``d`` is below a threshold, residual decoding where ``r`` is above one,
and a fixed fraction of Eq. 2's step. This script replays every rule of that shape, with thresholds
``d`` in {1.5, 2.5, 4, 8} and ``r`` in {1, 1.5, 2, 3, 5}, residual step in {0.1, 0.2, 0.3, 0.5} and plain step
in {0, 0.1, 0.2, 0.3} (0: the reconstruction), on the decodings the run stored (``s<k>`` and ``s<k>+res``
columns), and prints per modality the median gain over identity, the worst pair, the pairs more than
0.2 dB below identity and the median SSIM change. Rules that keep every pair within 0.2 dB come first,
ordered by the smaller of the widefield and brightfield medians; last, what picking each pair's best
stored decoding with the real focus plane would give.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path

import numpy as np

MODALITIES = ("widefield", "brightfield", "light-sheet", "bead")
SIGMAS = re.compile(r"difference ([\d.]+) sigma, reconstruction residual ([\d.]+) sigma")
GRID = {"difference": (1.5, 2.5, 4, 8), "residual": (1, 1.5, 2, 3, 5), "residual_step": (0.1, 0.2, 0.3, 0.5),
        "plain_step": (0, 0.1, 0.2, 0.3)}


def column(difference: float, residual: float, d: float, r: float, residual_step: float, plain_step: float) -> str:
    """The benchmark column a rule with these thresholds and steps picks for a pair measured ``d``, ``r``."""
    if r > residual:
        return f"s{residual_step:g}+res" if d >= difference else "identity"
    return f"s{plain_step:g}" if d >= difference and plain_step > 0 else "recon"


def scores(rows: list[dict], pick) -> dict:
    """Per modality: median gain, worst gain, pairs below -0.2 dB and median SSIM change of the picked columns."""
    out = {}
    for modality in MODALITIES:
        sel = [r for r in rows if r["modality"] == modality]
        if not sel:
            continue
        cols = [pick(r) for r in sel]
        gain = np.array([r[f"{c}_psnr"] - r["identity_psnr"] for r, c in zip(sel, cols)])
        dssim = np.array([r[f"{c}_ssim"] - r["identity_ssim"] for r, c in zip(sel, cols)])
        out[modality] = (float(np.median(gain)), float(gain.min()), int((gain < -0.2).sum()), float(np.median(dssim)))
    return out


def line(name: str, result: dict) -> str:
    cells = (f"{m[0]:+.2f} / {m[1]:+.2f} / {m[2]} / {m[3]:+.3f}" for m in result.values())
    return f"| {name} | " + " | ".join(cells) + " |"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", type=Path, help="written by evaluate_models.py --strengths 0.1 0.2 0.3 0.5 --json")
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args(argv)
    try:
        rows = json.loads(args.json.read_text())["rows"]
    except (OSError, ValueError, KeyError) as err:
        p.error(f"{args.json}: not a benchmark JSON ({err})")
    for r in rows:
        r["d"], r["r"] = (float(v) for v in SIGMAS.search(r["auto_rule"]).groups())
    r0 = rows[0]
    missing = [f"s{k:g}+res" for k in GRID["residual_step"] if f"s{k:g}+res_psnr" not in r0]
    if missing:
        p.error(f"{args.json} lacks the columns {', '.join(missing)}; "
                "run evaluate_models.py --strengths 0.1 0.2 0.3 0.5")
    modalities = [m for m in MODALITIES if any(r["modality"] == m for r in rows)]
    head = "| rule | " + " | ".join(modalities) + " |"
    print("median gain / worst pair / pairs below -0.2 dB / median SSIM change, per modality\n")
    print(head + "\n|" + " --- |" * (len(modalities) + 1))
    print(line("the default rule (auto column)", scores(rows, lambda r: "auto")))
    results = []
    for setting in itertools.product(*GRID.values()):
        result = scores(rows, lambda r, s=setting: column(s[0], s[1], r["d"], r["r"], s[2], s[3]))
        safe = all(v[2] == 0 for v in result.values())
        results.append((safe, min(result.get("widefield", (0,))[0], result.get("brightfield", (0,))[0]), setting,
                        result))
    results.sort(key=lambda t: (t[0], t[1]), reverse=True)
    for safe, _, setting, result in results[:args.top]:
        name = "d >= {}, r > {}: residual {}; else plain {}".format(*setting)
        print(line(name + ("" if safe else " (loses > 0.2 dB)"), result))
    print(f"\n{sum(t[0] for t in results)} of {len(results)} rules keep every pair within 0.2 dB of identity")
    stored = [k[:-5] for k in r0 if k.endswith("_psnr") and not k.startswith(("pixel", "rl_"))]
    best = scores(rows, lambda r: max(stored, key=lambda c: r[f"{c}_psnr"]))
    print("each pair's best stored decoding, picked with the focus plane (a bound no rule reaches): "
          + ", ".join(f"{m} {v[0]:+.2f} dB" for m, v in best.items()))


if __name__ == "__main__":
    main()
