"""How far beyond the sharper plane should deblurring step? Gain over identity per pair and per step.

    python benchmarks/step_sweep.py [MODEL] [--series KEY ...] [--sim DIR] [--data ../shared/data] [--fixed K ...]
        [--json OUT]

Every deblurring pair (B, C) of the real series named by ``--series`` (keys of ``evaluate_models.SERIES``;
default the HeLa field and the bead), or, with ``--sim``, of held-out simulated stacks, is
decoded at latent steps ``z_B + k (z_B - z_C)`` for ``k`` on a grid from 0 (the model's reconstruction
of B) to 5. Eq. 2 is ``k = d_B / (d_C - d_B)``; the model's calibrated strength ``s`` takes ``s`` times
that step. The best grid step of each pair is picked *with* the real in-focus plane, which no real use
has: its median is an upper bound on what any rule for the step can reach with these weights.
``--fixed K ...`` adds the gain at constant steps ``k = K``, the rule that ignores the planes' defocus.
Prints one row per pair, then medians and means by series and over all pairs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from evaluate_models import REPO, SERIES, load
from latent_focus.engine import LatentFocus
from latent_focus.errors import InputError
from latent_focus.io import read_stack
from latent_focus.latent import combine, eq2_step
from latent_focus.methods.latent.evaluation import StackPlanes

STEPS = np.round(np.concatenate([np.arange(0, 1, 0.05), np.arange(1, 3, 0.25), np.arange(3, 5.01, 0.5)]), 2)
COLUMNS = ["eq2", "calibrated", "reconstruction", "best"]


def fixed_key(k: float) -> str:
    """Row key of the gain at one constant latent step ``k`` (``--fixed``)."""
    return f"k = {k:g}"


def sweep(engine: LatentFocus, name: str, stack, focus: int, fixed=()) -> list[dict]:
    """One row per deblurring pair: the Eq. 2 step, gains over identity (dB), the best grid step, and the
    gain at every constant step in ``fixed``."""
    planes = StackPlanes(engine, stack, focus)
    rel, z = planes.rel, planes.z

    def gain(b, c, k):
        return planes.gain(b, combine([z(b), z(c)], [1 + k, -k]))

    rows = []
    for b, c, alpha in planes.deblur_cases():
        k_eq2 = eq2_step(alpha)  # Eq. 2 is z_B + k_eq2 (z_B - z_C)
        grid = [gain(b, c, k) for k in STEPS]
        best = int(np.argmax(grid))
        rows.append({"series": name, "B": b, "C": c, "d_B": float(rel[b]), "d_C": float(rel[c]), "k_eq2": k_eq2,
                     "eq2": gain(b, c, k_eq2), "calibrated": gain(b, c, engine.strength * k_eq2),
                     "reconstruction": grid[0], "best_k": float(STEPS[best]), "best": grid[best],
                     **{fixed_key(k): gain(b, c, k) for k in fixed}})
    return rows


def table(rows: list[dict], strength: float, fixed=()) -> str:
    """Per-pair gains, then their medians and means by series and over all pairs."""
    extra = [fixed_key(k) for k in fixed]
    head = (f"| series | B | C | d_B | d_C | Eq. 2 step | gain Eq. 2 | gain s = {strength:.2f} | gain k = 0 "
            "| best step | gain at best step |" + "".join(f" gain {k} |" for k in extra))
    lines = [head, "|" + " --- |" * (11 + len(extra))]
    for r in rows:
        lines.append(f"| {r['series']} | {r['B']} | {r['C']} | {r['d_B']:.2f} | {r['d_C']:.2f} | {r['k_eq2']:.2f} | "
                     + " | ".join(f"{r[k]:+.2f}" for k in COLUMNS[:3]) + f" | {r['best_k']:.2f} | {r['best']:+.2f} |"
                     + "".join(f" {r[k]:+.2f} |" for k in extra))
    groups = {s: [r for r in rows if r["series"] == s] for s in dict.fromkeys(r["series"] for r in rows)}
    groups["all"] = rows
    for stat, fn in (("median", np.median), ("mean", np.mean)):
        lines += ["", "| pairs | n | " + " | ".join(f"{stat} gain: {k}" for k in COLUMNS + extra) + " |",
                  "|" + " --- |" * (6 + len(extra))]
        for name, sel in groups.items():
            values = (f"{fn([r[k] for r in sel]):+.2f} dB" for k in COLUMNS + extra)
            lines.append(f"| {name} | {len(sel)} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def simulated_series(folder: Path) -> list[tuple[str, object, int]]:
    """Held-out stacks written by scripts/make_training_data.py (focus = the plane at z = 0)."""
    recipe = json.loads((folder / "recipe.json").read_text())
    return [(r["file"], read_stack(folder / r["file"]), int(np.argmin(np.abs(r["z_um"])))) for r in recipe]


def load_series(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list:
    """(name, stack, focus) of the series ``--sim`` or ``--series`` names; a missing file is a usage error."""
    if args.sim is not None and not (args.sim / "recipe.json").is_file():
        parser.error(f"--sim {args.sim}: no recipe.json there; pass a folder written by scripts/make_training_data.py")
    try:
        if args.sim is not None:
            return simulated_series(args.sim)
        return [(s.key, got.stack, got.focus) for s in SERIES if s.key in args.series
                for got in [load(s, args.data)]]
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
    p.add_argument("model", nargs="?", default="default")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--series", nargs="+", choices=[s.key for s in SERIES], default=["hela", "bead"],
                   help="the real series to sweep (default: hela bead)")
    p.add_argument("--sim", type=Path, default=None, help="held-out simulated stacks instead of the real series")
    p.add_argument("--device", default="auto")
    p.add_argument("--fixed", type=float, nargs="+", default=[], metavar="K",
                   help="also report the gain at these constant latent steps k, the same for every pair")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if any(not k >= 0 for k in args.fixed):
        p.error(f"--fixed {' '.join(map(str, args.fixed))}: steps are 0 or more (0 is the reconstruction of B)")
    engine = load_engine(p, args.model, args.device)
    series = load_series(p, args)
    rows = [row for name, stack, focus in series for row in sweep(engine, name, stack, focus, args.fixed)]
    print(f"model: {args.model} on {engine.device_name}, calibrated strength {engine.strength:.2f}\n")
    print(table(rows, engine.strength, args.fixed))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
