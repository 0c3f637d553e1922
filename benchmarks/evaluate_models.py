"""Score deblurring on every real defocus series with a known focus: one table per modality.

    python benchmarks/evaluate_models.py MODEL [--method NAME ...] [--data ../shared/data] [--json OUT]
        [--model-for MODALITY=MODEL] [--leave-out SERIES=MODEL] [--strengths K ...] [--max-pairs N]
        [--adapt [--adapt-minutes M]]

Series (:data:`SERIES`): widefield (the NEUBIAS Hoechst nucleus, 40x/1.2 W, 0.5 um planes, focus 19),
bead (the EPFL bead, every 4th plane around its brightest, plane units), brightfield (the HeLa field, focus
3, and the four BABY yeast traps, 5 evenly spaced sections of unknown spacing, focus the middle section)
and light-sheet (the DFNN mitochondria, focus 18, and microtubules, focus 11, 0.05 um planes). Every pair
(B, C) on one side of focus is deblurred towards the focus plane and scored against it (PSNR and SSIM on
per-stack normalised intensities) beside identity (B itself), pixel-space Eq. 2 and, where the optics
are known, Richardson-Lucy with the PSF of B's defocus. The latent columns come from the ``latent``
method's own code path with the known focus: ``auto`` (the default rule), ``model`` (the calibrated
strength) and ``eq2`` (Eq. 2), plain and residual (``x_B + D(z') - D(z_B)``), ``recon`` (``D(E(x_B))``).
Stacks without z spacing use plane units, and the table says so. A series whose stack the model was
trained on (its card's training data) is scored only with a model trained without it (``--leave-out``),
and the table says so. ``--adapt`` instead adapts the model to each stack with the planes within two
steps of focus left out (``latent_focus.methods.latent.adapt``), then deblurs pairs whose B is one of those planes,
before and after (one table).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from latent_focus.errors import InputError
from latent_focus.focus import deblur_pairs, triplets_for
from latent_focus.io import Normalizer, Stack, plane_positions, read_stack
from latent_focus.methods import PAIR, load_method, run
from latent_focus.methods.latent.evaluation import latent_cases
from latent_focus.metrics import psnr, ssim
from latent_focus.models import find_model, read_card
from latent_focus.optics.deconvolution import bead_psf, optics_psf, richardson_lucy

REPO = Path(__file__).resolve().parents[1]
MODALITIES = ("widefield", "brightfield", "light-sheet", "bead")
SCORE_PERCENTILES = (0.1, 99.9)  # the scoring normalisation, the same for every model and method
LOSS_LIMIT_DB = -0.2  # the most a pair may lose against identity


@dataclass(frozen=True)
class Series:
    """A real defocus z-stack with a known in-focus plane."""

    key: str
    folder: str
    modality: str
    focus: int | None  # None: the bead's brightest plane
    optics: tuple | None = None  # (NA, wavelength um, immersion index, pixel um) for the Richardson-Lucy column
    note: str = ""


SERIES = (
    Series("neubias", "neubias_widefield_nucleus_hoechst", "widefield", 19, (1.2, 0.46, 1.33, 0.256),
           "NEUBIAS Hoechst nucleus, 40x/1.2 W, widefield"),
    Series("bead", "bead_widefield_epfl", "bead", None, None, "EPFL 2.5 um bead, every 4th plane (theoretical PSF)"),
    Series("hela", "brightfield_hela_set1", "brightfield", 3, (0.75, 0.55, 1.0, 0.2005), "HeLa, 40x/0.75 air"),
    Series("yeast-evolve-A", "baby_brightfield_yeast_evolve_testA", "brightfield", 2, None, "BABY yeast trap"),
    Series("yeast-evolve-G", "baby_brightfield_yeast_evolve_testG_tp1", "brightfield", 2, None, "BABY yeast trap"),
    Series("yeast-prime-A", "baby_brightfield_yeast_prime95b_testA", "brightfield", 2, None, "BABY yeast trap"),
    Series("yeast-prime-C", "baby_brightfield_yeast_prime95b_testC_tp1", "brightfield", 2, None, "BABY yeast trap"),
    Series("mitochondria", "dfnn_lightsheet_mitochondria", "light-sheet", 18, None, "DFNN light-sheet, lattice"),
    Series("microtubules", "dfnn_lightsheet_microtubules", "light-sheet", 11, None, "DFNN light-sheet, lattice"),
)
BEAD_STEP = 4  # the bead series takes every 4th plane, 3 on each side of the brightest


@dataclass
class Loaded:
    series: Series
    stack: Stack  # the planes scored
    focus: int
    psf: object  # defocus -> kernel, or None
    unit: str  # "um", or "planes" where the z spacing is unknown
    full: Stack  # the whole file (the bead's 64 planes), for adaptation
    full_focus: int
    full_step: float  # spacing of the scored planes in units of the full stack's positions
    sha256: set = field(default_factory=set)


def load(series: Series, data: Path) -> Loaded:
    """Read one series; a missing file stops with the library's one-line message."""
    folder = data / series.folder
    full = read_stack(folder / "stack.tif")
    if series.focus is None:  # the bead: brightest plane, every 4th plane 3 either side
        focus = int(np.argmax(full.data.reshape(full.n_planes, -1).max(axis=1)))
        idx = [i for i in range(focus - 3 * BEAD_STEP, focus + 3 * BEAD_STEP + 1, BEAD_STEP) if 0 <= i < full.n_planes]
        full.z_um = None  # the bead's z.txt holds plane indices: plane units
        stack = Stack(full.data[idx], np.asarray(idx, float), None, full.dtype, str(folder))
        kernel = tifffile.imread(folder / "theoretical_psf_kernel.tif")
        loaded = Loaded(series, stack, idx.index(focus), bead_psf(kernel), "planes", full, focus, float(BEAD_STEP))
    else:
        psf = optics_psf(*series.optics) if series.optics else None
        unit = "um" if full.z_um is not None else "planes"
        pos = plane_positions(full.n_planes, full.z_um)
        loaded = Loaded(series, full, series.focus, psf, unit, full, series.focus, float(np.median(np.diff(pos))))
    loaded.sha256 = {_sha(loaded.stack.data), _sha(full.data)}
    return loaded


def _sha(data: np.ndarray) -> str:
    """The hash training records for a stack (float32 planes, C order)."""
    return hashlib.sha256(np.ascontiguousarray(data, dtype=np.float32).tobytes()).hexdigest()


def trained_on(model: str | None) -> set[str]:
    """SHA-256 of every stack in the training data of ``model`` and of the models it was fine-tuned from."""
    shas, seen = set(), set()
    path = find_model(model)
    while path is not None and str(path) not in seen:
        seen.add(str(path))
        card = read_card(path)
        shas |= {d.get("sha256") for d in card.training.get("data", []) if isinstance(d, dict)}
        parent = (card.training.get("fine_tuned_from") or {}).get("name")
        try:
            path = find_model(parent) if parent else None
        except InputError:  # the parent is not installed here: its data are unknown
            path = None
    return shas - {None}


def subset(pairs: list, n: int | None) -> list:
    """At most ``n`` of ``pairs``, evenly spaced (all when ``n`` is None)."""
    if n is None or len(pairs) <= n:
        return pairs
    return [pairs[int(i)] for i in np.linspace(0, len(pairs) - 1, n).round()]


# -- scoring -----------------------------------------------------------------------------------------

def score_series(loaded: Loaded, method, strengths=(), others=(), max_pairs: int | None = None,
                 pairs=None) -> list[dict]:
    """Every pair of one series: identity, pixel-space, Richardson-Lucy, the latent columns and ``others``."""
    stack, focus = loaded.stack, loaded.focus
    norm = Normalizer.from_data(stack.data, SCORE_PERCENTILES)
    x = norm.normalize(stack.data)
    target = x[focus]

    def score(b, image):
        out = norm.normalize(image)
        return {"psnr": psnr(target, out), "ssim": ssim(target, out)}

    rel = plane_positions(stack.n_planes, stack.z_um) - plane_positions(stack.n_planes, stack.z_um)[focus]
    pairs = subset(deblur_pairs(rel, focus), max_pairs) if pairs is None else pairs
    rows = latent_cases(method, stack, focus, pairs, strengths, score)
    done = {}  # (column, B, C or None) -> scores: single-plane results are computed once per plane
    for row in rows:
        row["series"], row["modality"] = loaded.series.key, loaded.series.modality
        b, c = row["B"], row["C"]
        if loaded.psf is not None:
            if ("rl", b, None) not in done:
                done["rl", b, None] = score(b, norm.denormalize(richardson_lucy(x[b], loaded.psf(float(rel[b])), 30)))
            row.update({f"rl_{k}": v for k, v in done["rl", b, None].items()})
        for other in others:
            key = (other.name, b, c if other.input == PAIR else None)
            if key not in done:
                done[key] = score(b, run(other.restore(stack, b, other.default_params(), partner=key[2])).image)
            row.update({f"{other.name}_{k}": v for k, v in done[key].items()})
    return rows


def columns_of(rows: list[dict]) -> list[str]:
    """The scored columns, identity first, in the order the rows hold them."""
    cols = []
    for row in rows:
        for key in row:
            if key.endswith("_psnr") and key[:-5] not in cols:
                cols.append(key[:-5])
    return cols


def summary(rows: list[dict]) -> dict:
    """Per column: median PSNR and SSIM, median and worst gain over identity, and pairs losing > 0.2 dB."""
    out = {}
    for col in columns_of(rows):
        sel = [r for r in rows if f"{col}_psnr" in r]
        gains = np.array([r[f"{col}_psnr"] - r["identity_psnr"] for r in sel])
        dssim = np.array([r[f"{col}_ssim"] - r["identity_ssim"] for r in sel])
        worst = sel[int(np.argmin(gains))]
        out[col] = {"pairs": len(sel), "psnr": float(np.median([r[f"{col}_psnr"] for r in sel])),
                    "ssim": float(np.median([r[f"{col}_ssim"] for r in sel])),
                    "gain_db": float(np.median(gains)), "worst_gain_db": float(gains.min()),
                    "worst_pair": f"{worst['series']} B={worst['B']} C={worst['C']}",
                    "ssim_gain": float(np.median(dssim)), "losing": int((gains < LOSS_LIMIT_DB).sum())}
    return out


def format_summary(title: str, summ: dict) -> str:
    lines = [f"#### {title}", "",
             "| column | pairs | median PSNR | median SSIM | median gain over identity | median SSIM change "
             "| worst pair | pairs below -0.2 dB |", "|" + " --- |" * 8]
    for col, s in summ.items():
        if col == "identity":
            lines.append(f"| identity | {s['pairs']} | {s['psnr']:.2f} | {s['ssim']:.3f} | | | | |")
            continue
        lines.append(f"| {col} | {s['pairs']} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['gain_db']:+.2f} dB | "
                     f"{s['ssim_gain']:+.3f} | {s['worst_gain_db']:+.2f} dB ({s['worst_pair']}) | {s['losing']} |")
    return "\n".join(lines)


# -- adaptation --------------------------------------------------------------------------------------

def adapt_split(loaded: Loaded, steps: int = 2) -> dict:
    """How one series is adapted without what it is scored on.

    The planes within ``steps`` plane steps of focus are left out and the model adapts on the others
    (``"planes"``). Where those leave no triplet on one side of focus, it adapts on the top half of the
    field and is scored on the bottom half (``"halves"``): with every plane but the focus, or, where that
    still leaves no triplet, with every plane (``"halves, focus plane included"``).
    """
    full, pos = loaded.full, plane_positions(loaded.full.n_planes, loaded.full.z_um)
    near = np.abs(pos - pos[loaded.full_focus]) <= steps * loaded.full_step + 1e-6
    keep = [i for i in range(full.n_planes) if not near[i]]
    if _has_triplets(loaded, keep):
        scored = [i for i in range(loaded.stack.n_planes) if i != loaded.focus and abs(loaded.focus - i) <= steps]
        return {"protocol": "planes", "adapt_planes": keep, "rows": None, "scored_B": scored}
    h = full.data.shape[1]
    if h // 2 < 32:
        return {"protocol": None, "why": f"planes of {h} rows are too small to split in halves"}
    scored = [i for i in range(loaded.stack.n_planes) if i != loaded.focus]
    for protocol, planes in (("halves", [i for i in range(full.n_planes) if i != loaded.full_focus]),
                             ("halves, focus plane included", list(range(full.n_planes)))):
        if _has_triplets(loaded, planes):
            return {"protocol": protocol, "adapt_planes": planes, "rows": (0, h // 2), "scored_B": scored}
    return {"protocol": None, "why": "no three planes on one side of focus"}


def _has_triplets(loaded: Loaded, planes: list[int]) -> bool:
    return any(set(t[:3]) <= set(planes)
               for t in triplets_for(loaded.full.n_planes, loaded.full.z_um, loaded.full_focus, "all"))


def adapt_series(loaded: Loaded, model: str | None, minutes: float, device: str, folder: Path) -> dict:
    """Adapt ``model`` to one series without its scored planes; score those pairs before and after."""
    from latent_focus.methods.latent.adapt import adapt

    split = adapt_split(loaded)
    if split["protocol"] is None:
        return {"series": loaded.series.key, "protocol": None, "why": split["why"]}
    stack, focus = loaded.stack, loaded.focus
    if split["protocol"].startswith("halves"):
        h = stack.data.shape[1]
        stack = Stack(stack.data[:, h // 2:], stack.z_um, stack.pixel_size_um, stack.dtype, stack.source)
    scored = Loaded(loaded.series, stack, focus, loaded.psf, loaded.unit, loaded.full, loaded.full_focus,
                    loaded.full_step)
    rel = plane_positions(stack.n_planes, stack.z_um) - plane_positions(stack.n_planes, stack.z_um)[focus]
    pairs = [(b, c) for b, c in deblur_pairs(rel, focus) if b in split["scored_B"]]
    out = folder / loaded.series.key
    t0 = time.perf_counter()
    last = None
    for last in adapt(loaded.full, out, model, minutes, focus=loaded.full_focus, planes=split["adapt_planes"],
                      rows=split["rows"], device=device):
        pass
    seconds = time.perf_counter() - t0
    before = score_series(scored, load_method("latent", model, device), pairs=pairs)
    after = score_series(scored, load_method("latent", str(out), device), pairs=pairs)
    return {"series": loaded.series.key, "modality": loaded.series.modality, "protocol": split["protocol"],
            "adapt_planes": split["adapt_planes"], "scored_B": split["scored_B"], "pairs": len(pairs),
            "steps": last.done if last else 0, "seconds": seconds,
            "before": summary(before), "after": summary(after), "rows_before": before, "rows_after": after}


def format_adapt(results: list[dict], minutes: float) -> str:
    lines = [f"#### Adapting to each stack ({minutes:g} min budget), default rule (auto), held-out pairs", "",
             "| series | protocol | adapted on planes | steps | pairs | identity PSNR | before: gain | after: gain "
             "| before: worst | after: worst | SSIM change before / after |", "|" + " --- |" * 11]
    for r in results:
        if r["protocol"] is None:
            lines.append(f"| {r['series']} | not adapted: {r['why']} |" + " |" * 9)
            continue
        b, a = r["before"]["auto"], r["after"]["auto"]
        where = {"planes": f"all but the {len(r['scored_B']) + 1} planes nearest focus",
                 "halves": "top half, every plane but the focus (scored on the bottom half)"}.get(
                     r["protocol"], "top half, every plane (scored on the bottom half)")
        lines.append(f"| {r['series']} | {r['protocol']} | {where} | {r['steps']} | {r['pairs']} | "
                     f"{r['before']['identity']['psnr']:.2f} | {b['gain_db']:+.2f} dB | {a['gain_db']:+.2f} dB | "
                     f"{b['worst_gain_db']:+.2f} dB | {a['worst_gain_db']:+.2f} dB | "
                     f"{b['ssim_gain']:+.3f} / {a['ssim_gain']:+.3f} |")
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------------

def _pairs_option(text: str, what: str, keys) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not value or key not in keys:
        raise argparse.ArgumentTypeError(f"{what} takes NAME=MODEL with NAME one of {', '.join(keys)}; got {text!r}")
    return key, value


def main(argv=None) -> None:
    keys = [s.key for s in SERIES]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="the latent model: default, a model name or a model folder")
    p.add_argument("--method", action="append", default=[], metavar="NAME",
                   help="also score this registered method with its defaults (repeatable)")
    p.add_argument("--model-for", action="append", default=[], metavar="MODALITY=MODEL",
                   type=lambda t: _pairs_option(t, "--model-for", MODALITIES),
                   help="run another latent model on one modality, e.g. brightfield=brightfield")
    p.add_argument("--leave-out", action="append", default=[], metavar="SERIES=MODEL",
                   type=lambda t: _pairs_option(t, "--leave-out", keys),
                   help="score a series the model was trained on with this model, trained without it")
    p.add_argument("--series", nargs="+", choices=keys, default=keys, help="score only these series")
    p.add_argument("--strengths", type=float, nargs="+", default=[], metavar="K",
                   help="also score these fixed fractions of Eq. 2's step, plain and residual")
    p.add_argument("--max-pairs", type=int, default=None, help="at most this many pairs per series, evenly spaced")
    p.add_argument("--adapt", action="store_true",
                   help="instead: adapt the model to each stack without the planes near focus, and score those")
    p.add_argument("--adapt-minutes", type=float, default=2.0, help="adaptation budget per stack (minutes)")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if any(not 0 < k <= 1 for k in args.strengths):
        p.error(f"--strengths {' '.join(map(str, args.strengths))}: each is a fraction in (0, 1]")
    try:
        models = {m: args.model for m in MODALITIES} | dict(args.model_for)
        trained = {m: trained_on(m) for m in set(models.values()) | {m for _, m in args.leave_out}}
        latent = {m: load_method("latent", m, args.device) for m in trained}
        others = [load_method(name, None, args.device) for name in args.method if name != "latent"]
    except InputError as err:
        p.error(str(err))
    try:
        series = [load(s, args.data) for s in SERIES if s.key in args.series]
    except (FileNotFoundError, InputError) as err:
        p.error(f"--data {args.data}: {err}")
    if args.adapt:
        results = {"adapt": adapt_all(series, models, trained, args.adapt_minutes, args.device)}
        print(format_adapt(results["adapt"], args.adapt_minutes))
    else:
        results = score_all(series, models, dict(args.leave_out), trained, latent, others, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))


def score_all(series: list[Loaded], models: dict, leave_out: dict, trained: dict, latent: dict, others: list,
              args: argparse.Namespace) -> dict:
    """Score every series with its modality's model (or its leave-out model); print the tables."""
    rows, status = [], []
    for s in series:
        model = leave_out.get(s.series.key, models[s.series.modality])
        row = {"series": s.series.key, "modality": s.series.modality, "planes": s.stack.n_planes, "focus": s.focus,
               "unit": s.unit, "model": model, "note": s.series.note}
        if s.sha256 & trained[model]:
            row["status"] = f"in the training data of {model}: not scored (pass --leave-out {s.series.key}=MODEL)"
        else:
            row["status"] = (f"left out of training: scored with {model}" if s.series.key in leave_out
                             else "never used in training")
            t0 = time.perf_counter()
            got = score_series(s, latent[model], args.strengths, others, args.max_pairs)
            row.update(pairs=len(got), seconds=round(time.perf_counter() - t0, 1))
            rows += got
        status.append(row)
        print(f"{s.series.key}: {row.get('pairs', 0)} pairs, {row['status']} ({row.get('seconds', 0)} s)",
              file=sys.stderr, flush=True)
    print(format_series(status))
    results = {"series": status, "summary": {}}
    for modality in MODALITIES + ("overall",):
        sel = [r for r in rows if modality in ("overall", r["modality"])]
        if sel:
            results["summary"][modality] = summary(sel)
            print("\n" + format_summary(f"{modality} ({len({r['series'] for r in sel})} series, medians over "
                                         f"{len(sel)} pairs)", results["summary"][modality]))
    results["rows"] = rows
    return results


def adapt_all(series: list[Loaded], models: dict, trained: dict, minutes: float, device: str) -> list[dict]:
    """Adapt each series' model to it without the planes it is scored on (series it was trained on are skipped)."""
    adapted = []
    with tempfile.TemporaryDirectory(prefix="adapted-") as tmp:
        for s in series:
            model = models[s.series.modality]
            if s.sha256 & trained[model]:
                continue
            adapted.append(adapt_series(s, model, minutes, device, Path(tmp)))
            print(f"adapted {s.series.key}", file=sys.stderr, flush=True)
    return adapted


def format_series(status: list[dict]) -> str:
    lines = ["| series | modality | planes | focus | z unit | model | scored |", "|" + " --- |" * 7]
    for r in status:
        unit = "um" if r["unit"] == "um" else "planes (z spacing unknown)"
        lines.append(f"| {r['series']} ({r['note']}) | {r['modality']} | {r['planes']} | {r['focus']} | {unit} | "
                     f"{r['model']} | {r['status']}" + (f", {r['pairs']} pairs |" if "pairs" in r else " |"))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
