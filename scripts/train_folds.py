"""Train a single-plane network on each fold of the corpus and on every series, then score it out of fold by steps.

    python scripts/train_folds.py CORPUS OUT --method analysis-synthesis --steps 10000 [--device cuda] [--jobs 3] \
        -- --from analysis-synthesis-base --content cells3d.tif --bead bead.tif --lr 2e-4 --seed 4
    python scripts/train_folds.py CORPUS OUT --method care --steps 8000 -- --sim SIM

``CORPUS`` is the folder ``scripts/build_corpus.py`` writes (``SERIES/stack.tif`` and ``SERIES/meta.json`` with
``focus_plane`` and ``fold``). Three runs: ``OUT/METHOD_A`` on fold A's series, ``OUT/METHOD_B`` on fold B's and
``OUT/METHOD_all`` on every series (``--runs A B`` trains the fold runs only), each keeping its weights every
``--snapshot-every`` steps; the arguments after ``--`` go to every run's training command (``latent-focus
train-analysis-synthesis`` or ``scripts/train_care.py``). The runs are resumable: start the same command again after
a stop. Then every step that both fold models kept is scored by ``benchmarks/single_plane_oof.py`` (each series by
the fold model that did not train on it), and the learning curve is printed and written to ``OUT/METHOD_curve.json``
(a step scored after its snapshots were kept is not scored again). On a GPU, ``--device cuda``
(``scripts/gpu_train.sh`` runs it for a set time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import single_plane_oof  # noqa: E402
from latent_focus.models.modelfile import SNAPSHOTS, snapshot_model  # noqa: E402

FOLDS = ("A", "B", "all")
MODALITIES = ("light-sheet", "widefield", "brightfield")


def corpus_folds(corpus: Path) -> dict[str, list[tuple[Path, int]]]:
    """The (series folder, in-focus plane) of each fold; ``all`` holds every series."""
    folds: dict[str, list] = {f: [] for f in FOLDS}
    for meta_file in sorted(corpus.glob("*/meta.json")):
        meta = json.loads(meta_file.read_text())
        if meta.get("focus_plane") is None or meta.get("fold") not in ("A", "B"):
            continue
        entry = (meta_file.parent, int(meta["focus_plane"]))
        folds[meta["fold"]].append(entry)
        folds["all"].append(entry)
    if not folds["A"] or not folds["B"]:
        raise SystemExit(f"{corpus} needs series of both folds A and B (meta.json 'fold' and 'focus_plane')")
    return folds


def training_command(method: str, out: Path, series: list[tuple[Path, int]], args, extra: list[str]) -> list[str]:
    common = ["--steps", str(args.steps), "--device", args.device, "--snapshot-every", str(args.snapshot_every)]
    if method == "analysis-synthesis":
        return [sys.executable, "-m", "latent_focus.cli", "train-analysis-synthesis", "-o", str(out),
                "--real", *[str(f / "stack.tif") for f, _ in series],
                "--real-focus", *[str(focus) for _, focus in series], *common, *extra]
    return [sys.executable, str(ROOT / "scripts" / "train_care.py"), str(out), "--real", *[str(f) for f, _ in series],
            *common, *extra]


def train_runs(args, extra: list[str]) -> dict[str, Path]:
    """Train (or resume) the three runs, ``args.jobs`` at a time; their logs go to ``OUT/METHOD_FOLD.log``."""
    folds = corpus_folds(args.corpus)
    runs = {f: args.out / f"{args.method}_{f}" for f in FOLDS}
    chosen = [f for f in FOLDS if f in args.runs]
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}

    def one(fold: str) -> int:
        command = training_command(args.method, runs[fold], folds[fold], args, extra)
        with open(args.out / f"{args.method}_{fold}.log", "a") as log:
            log.write(" ".join(command) + "\n")
            log.flush()
            return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        codes = dict(zip(chosen, pool.map(one, chosen)))
    failed = [f for f, code in codes.items() if code != 0]
    if failed:
        raise SystemExit(f"the {', '.join(failed)} run(s) failed; see {args.out}/{args.method}_FOLD.log")
    return runs


def kept_steps(run: Path) -> set[int]:
    return {int(p.stem.split("_")[1]) for p in (run / SNAPSHOTS).glob("step_*.pt")}


def curve_row(rows: list[dict], label: str, step: int) -> dict:
    gain = np.array([r[f"{label}_psnr"] - r["identity_psnr"] for r in rows])
    out = {"steps": step, "planes": len(rows), "median_gain_db": float(np.median(gain)),
           "worst_db": float(gain.min()), "below_minus_0.3": int((gain < -0.3).sum())}
    for modality in MODALITIES:
        g = [r[f"{label}_psnr"] - r["identity_psnr"] for r in rows if r["modality"] == modality]
        if g:
            out[modality] = float(np.median(g))
    return out


def score_curve(args, runs: dict[str, Path]) -> list[dict]:
    """Score each step both fold models kept, out of fold; returns one row per step."""
    steps = sorted(kept_steps(runs["A"]) & kept_steps(runs["B"]))
    if not steps:
        raise SystemExit(f"the fold runs kept no common snapshots in {runs['A']}/{SNAPSHOTS}")
    label, curve = "oof", []
    for step in steps:
        scores = args.out / "curve" / f"{args.method}_{step:05d}.json"
        kept = [runs[f] / SNAPSHOTS / f"step_{step:05d}.pt" for f in ("A", "B")]
        if scores.is_file() and all(scores.stat().st_mtime > k.stat().st_mtime for k in kept):
            curve.append(curve_row(json.loads(scores.read_text())["rows"], label, step))
            continue  # scored after these snapshots were kept
        models = {f: snapshot_model(runs[f], step, args.out / "curve" / f"{args.method}_{f}_{step:05d}")
                  for f in ("A", "B")}
        single_plane_oof.main(["--corpus", *map(str, sorted(p.parent for p in args.corpus.glob("*/meta.json"))),
                               "--methods", f"{label}={args.method}", "--json", str(scores),
                               *[f"--fold-model={label}:{f}={m}" for f, m in models.items()]])
        curve.append(curve_row(json.loads(scores.read_text())["rows"], label, step))
    return curve


def curve_table(curve: list[dict]) -> str:
    head = "| steps | median gain | worst plane | planes > 0.3 dB worse | " + " | ".join(MODALITIES) + " |"
    lines = [head, "|" + " --- |" * (4 + len(MODALITIES))]
    for r in curve:
        lines.append(f"| {r['steps']} | {r['median_gain_db']:+.2f} dB | {r['worst_db']:+.2f} dB | "
                     f"{r['below_minus_0.3']} of {r['planes']} | "
                     + " | ".join(f"{r[m]:+.2f} dB" if m in r else "-" for m in MODALITIES) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("corpus", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--method", required=True, choices=("analysis-synthesis", "care"))
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--snapshot-every", type=int, default=1000)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (one CPU core each)")
    p.add_argument("--runs", nargs="+", choices=FOLDS, default=list(FOLDS), help="the runs to train")
    p.add_argument("--curve-only", action="store_true", help="score the snapshots the runs kept; train nothing")
    args = p.parse_args(argv)
    if args.steps < 1 or args.snapshot_every < 1 or args.jobs < 1:
        p.error("--steps, --snapshot-every and --jobs must be at least 1")
    runs = {f: args.out / f"{args.method}_{f}" for f in FOLDS} if args.curve_only else train_runs(args, extra)
    curve = score_curve(args, runs)
    (args.out / f"{args.method}_curve.json").write_text(json.dumps(curve, indent=1))
    print(f"{args.method}, out of fold, median PSNR gain over the input by training steps")
    print(curve_table(curve))


if __name__ == "__main__":
    main()
