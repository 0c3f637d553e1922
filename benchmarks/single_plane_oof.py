"""Single-plane restoration on real focus series, out of fold: every method against the real in-focus plane.

    python benchmarks/single_plane_oof.py --corpus CORPUS/* --methods care analysis-synthesis psf-rl \
        as-real=analysis-synthesis --fold-model care:A=CARE_A --fold-model care:B=CARE_B \
        --fold-model as-real:A=PAIR_A --fold-model as-real:B=PAIR_B [--max-offset 8] [--crop 256] [--json OUT]

Each corpus folder (``scripts/build_corpus.py``: ``stack.tif`` and a ``meta.json`` with ``focus_plane``,
``modality`` and ``fold``) and the HeLa brightfield series of ``../shared/data`` (evaluation only) is centre
cropped; every plane within ``--max-offset`` planes of focus (every other plane in series of more than 20
planes) is restored on its own, as ``latent-focus restore STACK --method M --plane N`` does with the method's
defaults, and scored against the in-focus plane (PSNR and SSIM on intensities normalised per stack, 0.1/99.9
percentiles). A method given ``--fold-model`` models (``LABEL=METHOD`` names a second column of one method)
is scored with the fold model that did not train on the series (every fold model, averaged, for a series in
neither fold); the others run their shipped weights, which were not trained on these series' pairs.
Printed: the median gain over the input per series and per modality, the worst plane and how many planes
end more than 0.3 dB below their input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from latent_focus.io import Normalizer, Stack, read_stack
from latent_focus.methods import load_method, run
from latent_focus.metrics import psnr, ssim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analysis_synthesis_real import centre_crop  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HELA = ("brightfield_hela", DATA / "brightfield_hela_set1" / "stack.tif", 3, "brightfield", None)


def series_list(corpus: list[Path]) -> list[tuple]:
    out = []
    for folder in corpus:
        meta = json.loads((folder / "meta.json").read_text())
        out.append((meta["series"], folder / "stack.tif", int(meta["focus_plane"]), meta["modality"], meta["fold"]))
    return out + ([HELA] if HELA[1].is_file() else [])


def restore_planes(name: str, model: str | None, stack: Stack, planes: list[int]) -> list[np.ndarray]:
    method = load_method(name, model, "cpu")
    return [r.image for r in run(method.restore_planes(stack, planes, method.default_params()))]


def score(args, name, path, focus, modality, fold) -> list[dict]:
    stack = centre_crop(read_stack(path), args.crop)
    every = 2 if stack.n_planes > 20 else 1
    planes = [p for p in range(stack.n_planes) if 0 < abs(p - focus) <= args.max_offset and (p - focus) % every == 0]
    norm = Normalizer.from_data(stack.data)
    target = norm.normalize(stack.data[focus])
    rows = [{"series": name, "modality": modality, "fold": fold, "plane": p, "offset": p - focus,
             "identity_psnr": psnr(target, norm.normalize(stack.data[p])),
             "identity_ssim": ssim(target, norm.normalize(stack.data[p]))} for p in planes]
    for method in args.methods:
        t0 = time.perf_counter()
        label, _, kind = method.rpartition("=")
        folds = args.fold_models.get(label or kind)
        models = [m for f, m in folds.items() if f != fold] if folds else [None]
        outs = [restore_planes(kind, m, stack, planes) for m in models]
        method = label or kind
        for k, row in enumerate(rows):
            row[f"{method}_psnr"] = float(np.mean([psnr(target, norm.normalize(o[k])) for o in outs]))
            row[f"{method}_ssim"] = float(np.mean([ssim(target, norm.normalize(o[k])) for o in outs]))
        print(f"  {name}: {method} on {len(planes)} planes, {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return rows


def table(rows: list[dict], methods: list[str]) -> str:
    head = f"{'series':<38}{'planes':>7}{'input dB':>10}" + "".join(f"{m[:18]:>20}" for m in methods)
    lines = ["median PSNR gain over the input (dB), worst plane in brackets", head]
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(r["series"], []).append(r)
    for r in rows:
        groups.setdefault(f"[{r['modality']}]", []).append(r)
    groups["[all]"] = rows
    for key, rs in groups.items():
        cells = ""
        for m in methods:
            g = np.array([r[f"{m}_psnr"] - r["identity_psnr"] for r in rs])
            cells += f"{np.median(g):>+11.2f} ({g.min():+.2f})"
        lines.append(f"{key:<38}{len(rs):>7}{np.median([r['identity_psnr'] for r in rs]):>10.2f}{cells}")
    for m in methods:
        g = np.array([r[f"{m}_psnr"] - r["identity_psnr"] for r in rows])
        s = np.array([r[f"{m}_ssim"] - r["identity_ssim"] for r in rows])
        lines.append(f"{m}: median {np.median(g):+.2f} dB, SSIM {np.median(s):+.3f}; {(g > 0).sum()} of {len(g)} "
                     f"planes closer to focus, {(g < -0.3).sum()} more than 0.3 dB further")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, nargs="+", required=True)
    p.add_argument("--fold-model", action="append", default=[], metavar="METHOD:FOLD=MODEL",
                   help="the model of METHOD (or LABEL) trained on this fold's real series")
    p.add_argument("--methods", nargs="+", default=["care", "analysis-synthesis", "psf-rl"],
                   help="method names, or LABEL=METHOD for another column of one method")
    p.add_argument("--series", nargs="+", default=None, help="only these series")
    p.add_argument("--max-offset", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    args.fold_models = {}
    for spec in args.fold_model:
        key, _, model = spec.partition("=")
        method, _, fold = key.partition(":")
        args.fold_models.setdefault(method, {})[fold] = model
    if "care" in args.methods and "care" not in args.fold_models:
        p.error("--fold-model care:FOLD=MODEL is needed to score care out of fold")
    torch.set_num_threads(1)
    rows = []
    for entry in series_list(args.corpus):
        if args.series is None or entry[0] in args.series:
            rows += score(args, *entry)
    print(table(rows, [m.rpartition("=")[0] or m for m in args.methods]))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
