"""Out-of-fold scores of latent models trained by series folds, and the deblurring rule chosen leave-one-series-out.

    python benchmarks/out_of_fold.py --model A=FOLD_A_MODEL --model B=FOLD_B_MODEL [--step N]
        [--corpus DIR ...] [--max-pairs 40] [--json OUT]

Each real series with a known focus (those of ``evaluate_models.py`` plus ``--corpus`` folders holding
``stack.tif`` and a ``meta.json`` with ``focus_plane`` and ``modality``) is scored only with the models whose
training data did not include it (by hash or by file); a series no model trained on is scored with every
model and the gains averaged. ``--step N`` scores the models' snapshots at step N (``snapshots/step_N.pt``)
for the learning curve. Every pair (B, C) on one side of focus is decoded by the latent method's own code
path at fixed fractions of Eq. 2's step, plainly and residually, beside the model's reconstruction of B.

The default rule's two numbers (the fraction of Eq. 2's step, and the reconstruction residual in noise
sigmas above which decoding is residual) are then chosen leave-one-series-out: for each series, the pair
of numbers that does best over the other series (highest mean of their median gains, with at most 5 % of
their pairs more than 0.2 dB below B) is applied to it. Printed per modality: the out-of-fold rule, the
rule fitted on all series, the model's own default rule, B's reconstruction alone and each fixed step,
with the worst pair and the SSIM change.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_models import SERIES, Loaded, Series, load, score_series  # noqa: E402
from latent_focus.errors import InputError  # noqa: E402
from latent_focus.io import read_stack  # noqa: E402
from latent_focus.methods import load_method  # noqa: E402
from latent_focus.models import find_model, read_card  # noqa: E402
from latent_focus.models.modelfile import WEIGHTS, sha256_file  # noqa: E402

STRENGTHS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
LOSS_LIMIT_DB = -0.2
MAX_LOSING = 0.05  # share of pairs a rule may leave more than 0.2 dB below B


def corpus_series(folder: Path) -> Series:
    meta = json.loads((folder / "meta.json").read_text())
    return Series(folder.name, str(folder.resolve()), meta["modality"], int(meta["focus_plane"]), None,
                  meta.get("description", ""))


def training_files(model: str) -> tuple[set, set]:
    """SHA-256 of each training stack and the real paths of its files, through the model's parents."""
    shas, files, path, seen = set(), set(), find_model(model), set()
    while path is not None and str(path) not in seen:
        seen.add(str(path))
        card = read_card(path)
        for d in card.training.get("data", []):
            shas.add(d.get("sha256"))
            if d.get("source") and os.path.exists(d["source"]):
                files.add(os.path.realpath(d["source"]))
        parent = (card.training.get("fine_tuned_from") or {}).get("name")
        try:
            path = find_model(parent) if parent else None
        except InputError:
            path = None
    return shas - {None}, files


def snapshot_model(model: str, step: int, into: Path) -> str:
    """A model folder holding ``model``'s weights at ``step`` (its ``snapshots/step_N.pt``) with its card."""
    folder = find_model(model)
    out = into / f"{folder.name}-{step}"
    out.mkdir()
    shutil.copyfile(folder / f"snapshots/step_{step:05d}.pt", out / WEIGHTS)
    card = json.loads((folder / "card.json").read_text())
    card["weights_sha256"] = sha256_file(out / WEIGHTS)
    card["name"] = f"{card.get('name') or folder.name} at step {step}"
    (out / "card.json").write_text(json.dumps(card))
    return str(out)


def out_of_fold_rows(loaded: Loaded, models: dict, max_pairs: int) -> list[dict]:
    """The series' rows, scored by the models that did not train on it (gains averaged over them)."""
    stack_file = os.path.realpath(loaded.full.source)
    free = [k for k, (shas, files, _) in models.items() if not (loaded.sha256 & shas) and stack_file not in files]
    if not free:
        return []
    runs = [score_series(loaded, models[k][2], STRENGTHS, max_pairs=max_pairs) for k in free]
    rows = runs[0]
    for row, *others in zip(*runs):
        for key in row:
            if key.endswith(("_psnr", "_ssim")):
                row[key] = float(np.mean([row[key], *(o[key] for o in others)]))
        row["models"] = "+".join(free)
    return rows


THRESHOLDS = (1.0, 1.2, 1.5, 2.0)  # reconstruction residuals (noise sigmas) above which decoding is residual


def reconstruction_sigmas(row: dict) -> float:
    """The default rule's measurement of the pair's plane B, as its ``rule`` text gives it."""
    return float(re.search(r"reconstruction residual ([\d.]+) sigma", row["auto_rule"]).group(1))


def column(row: dict, rule: tuple) -> str:
    """The column a rule ``(threshold, strength)`` picks for ``row``: residual decoding above the threshold."""
    threshold, strength = rule
    return f"s{strength:g}" + ("+res" if reconstruction_sigmas(row) > threshold else "")


def rule_score(rows: list[dict], rule: tuple) -> float:
    """Mean over series of the median gain; -inf when too many pairs lose more than 0.2 dB."""
    gains = np.array([r[f"{column(r, rule)}_psnr"] - r["identity_psnr"] for r in rows])
    if np.mean(gains < LOSS_LIMIT_DB) > MAX_LOSING:
        return -np.inf
    by_series = {}
    for r, g in zip(rows, gains):
        by_series.setdefault(r["series"], []).append(g)
    return float(np.mean([np.median(v) for v in by_series.values()]))


def best_rule(rows: list[dict]) -> tuple:
    return max(((t, k) for t in THRESHOLDS for k in STRENGTHS), key=lambda rule: rule_score(rows, rule))


def leave_one_series_out(rows: list[dict]) -> dict:
    """The rule chosen for each series from the other series only."""
    return {key: best_rule([r for r in rows if r["series"] != key]) for key in sorted({r["series"] for r in rows})}


def stats(rows: list[dict], col_of) -> dict:
    gains = np.array([r[f"{col_of(r)}_psnr"] - r["identity_psnr"] for r in rows])
    dssim = np.array([r[f"{col_of(r)}_ssim"] - r["identity_ssim"] for r in rows])
    return {"pairs": len(rows), "gain": float(np.median(gains)), "worst": float(gains.min()),
            "losing": int((gains < LOSS_LIMIT_DB).sum()), "ssim": float(np.median(dssim))}


def report(rows: list[dict]) -> str:
    fitted = best_rule(rows)
    chosen = leave_one_series_out(rows)
    modalities = sorted({r["modality"] for r in rows})
    lines = [f"rule (residual above T sigma, strength s) fitted on every series: T={fitted[0]:g}, s={fitted[1]:g}; "
             "chosen leave-one-series-out: " + ", ".join(f"{k}: T={t:g} s={v:g}" for k, (t, v) in chosen.items()),
             "", "| rule | " + " | ".join(modalities) + " |", "|" + " --- |" * (len(modalities) + 1)]

    def row_for(name, col_of):
        cells = []
        for m in modalities:
            s = stats([r for r in rows if r["modality"] == m], col_of)
            cells.append(f"{s['gain']:+.2f} dB (worst {s['worst']:+.2f}, {s['losing']}/{s['pairs']} below -0.2, "
                         f"SSIM {s['ssim']:+.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    row_for("out of fold (rule chosen without the series)", lambda r: column(r, chosen[r["series"]]))
    row_for(f"fitted on all (T={fitted[0]:g}, s={fitted[1]:g})", lambda r: column(r, fitted))
    row_for("the model's default rule (auto)", lambda r: "auto")
    row_for("reconstruction of B alone, D(E(x_B))", lambda r: "recon")
    for k in STRENGTHS:
        row_for(f"step {k:g} alone, residual decoding", lambda r, c=f"s{k:g}+res": c)
        row_for(f"step {k:g}, plain decoding", lambda r, c=f"s{k:g}": c)
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True, metavar="NAME=MODEL")
    p.add_argument("--step", type=int, default=None, help="score the models' snapshots at this step")
    p.add_argument("--corpus", type=Path, nargs="*", default=[], help="more series: folders with meta.json")
    p.add_argument("--series", nargs="*", default=None, help="score only these series (keys or folder names)")
    p.add_argument("--max-pairs", type=int, default=40)
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    series = list(SERIES) + [corpus_series(f) for f in args.corpus]
    if args.series:
        series = [s for s in series if s.key in args.series]
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for spec in args.model:
            name, _, model = spec.partition("=")
            path = snapshot_model(model, args.step, Path(tmp)) if args.step else model
            shas, files = training_files(model)
            models[name] = (shas, files, load_method("latent", path, args.device))
        rows = []
        for s in series:
            loaded = load(s, args.data) if not os.path.isabs(s.folder) else _load_corpus(s)
            got = out_of_fold_rows(loaded, models, args.max_pairs)
            print(f"{s.key}: {len(got)} pairs ({got[0]['models'] if got else 'every model trained on it'})",
                  file=sys.stderr, flush=True)
            rows += got
    print(report(rows))
    if args.json:
        args.json.write_text(json.dumps({"step": args.step, "rows": rows}, indent=1))


def _load_corpus(s: Series) -> Loaded:
    full = read_stack(Path(s.folder) / "stack.tif")
    loaded = Loaded(s, full, s.focus, None, "um" if full.z_um is not None else "planes", full, s.focus, 1.0)
    from evaluate_models import _sha
    loaded.sha256 = {_sha(full.data)}
    return loaded


if __name__ == "__main__":
    main()
