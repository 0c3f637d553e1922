"""Copy a trained latent model into the package as a shipped model, with a complete model card.

    python scripts/ship_model.py MODEL_FOLDER [--step N] --name default --command "..." \
        --sim SIM_DIR/recipe.json --real-sources SOURCES.json --evaluation OOF.json [--description TEXT]

``--step N`` ships the weights the run kept at step N (``snapshots/step_N.pt``; the loss history is cut
there). The card gains the model's name and description, the exact training commands, what the training
data were (the simulated stacks' recipe in counts, and each real series with its repository, commit,
file, licence and hash), the training records of every model it was fine-tuned from, and the out-of-fold
evaluation. The weights keep their SHA-256; the training checkpoint is not shipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from pathlib import Path

from latent_focus.models import read_card
from latent_focus.models.card import read_history, write_history
from latent_focus.models.modelfile import WEIGHTS, sha256_file
from latent_focus.models.store import SHIPPED_DIR

SIMULATION = {"what": "simulated defocus stacks", "source": "scripts/make_training_data.py --optics wide: procedural "
              "specimens and planes of the scikit-image cells3d nuclei channel (Allen Institute for Cell Science, "
              "BSD-3-Clause); Born-Wolf and Gibson-Lanni PSFs, brightfield angular-spectrum propagation, "
              "Poisson-Gaussian camera noise (this package)"}
RESERVED = ("elgw/deconwolf", "tlambert03/mrc", "bobbyali/sephace", "BioinfoTongLI/BFAutofocus")


def lineage(folder: Path) -> list[dict]:
    """The training records of the models ``folder`` was fine-tuned from, nearest first: each parent is looked
    for beside ``folder`` and among the shipped models, and the chain stops where the parent found is not the
    one recorded (by its weights' hash)."""
    out, card = [], read_card(folder)
    while (parent := card.training.get("fine_tuned_from") or {}).get("name"):
        candidates = [Path(parent["name"]), folder.parent / parent["name"], SHIPPED_DIR / parent["name"]]
        found = [read_card(p) for p in candidates if (p / "card.json").is_file()]
        card = next((c for c in found if c.weights_sha256 == parent.get("weights_sha256")), None)
        if card is None:
            out.append({**parent, "training": "not available here"})
            break
        out.append({**parent, "training": _short(card.training), "training_command": card.training_command})
    return out


def _short(training: dict) -> dict:
    """A training record with each stack named by its file name and hash only."""
    record = {k: v for k, v in training.items() if k != "data"}
    record["data"] = [{"source": Path(d["source"]).name, "sha256": d["sha256"], "weight": d.get("weight", 1.0)}
                      for d in training.get("data", [])]
    return record


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--step", type=int, default=None, help="ship the snapshot kept at this step")
    p.add_argument("--name", default="default")
    p.add_argument("--description", default="")
    p.add_argument("--modality", default="widefield and confocal fluorescence, light-sheet, brightfield")
    p.add_argument("--command", required=True, help="the exact training commands")
    p.add_argument("--sim", type=Path, action="append", default=[], help="recipe.json of simulated training data")
    p.add_argument("--sim-command", default="", help="the command that made the simulated data")
    p.add_argument("--real-sources", type=Path, required=True, help="JSON list of the real series and their origin")
    p.add_argument("--evaluation", type=Path, action="append", default=[], help="JSON evaluation records")
    p.add_argument("--strength", type=json.loads, default=None, help="the deblur_strength record (JSON)")
    args = p.parse_args(argv)

    card = read_card(args.model)
    real = json.loads(args.real_sources.read_text())
    reserved = [r for r in real if r["repository"] in RESERVED]
    if reserved:
        p.error(f"{reserved[0]['series']} comes from {reserved[0]['repository']}, which is reserved: not shipped")
    history = read_history(args.model)
    weights = args.model / WEIGHTS
    if args.step is not None:
        weights = args.model / "snapshots" / f"step_{args.step:05d}.pt"
        history = [h for h in history if h["step"] <= args.step]
        card.training["steps_done"] = args.step
    kinds = Counter(r["kind"] for path in args.sim for r in json.loads(path.read_text()))
    card.name, card.description, card.modality = args.name, args.description, args.modality
    card.training_command = args.command
    card.training = _short(card.training)
    card.training["fine_tuned_from_records"] = lineage(args.model)
    card.training_data = {"simulated": {**SIMULATION, "command": args.sim_command, "stacks": dict(kinds)},
                          "real_series": real}
    card.evaluation = {path.stem: json.loads(path.read_text()) for path in args.evaluation}
    if args.strength is not None:
        card.deblur_strength = args.strength
    out = SHIPPED_DIR / args.name
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, out / WEIGHTS)
    card.weights_sha256 = sha256_file(out / WEIGHTS)
    card.write(out)
    write_history(out, history[::10] + history[-1:])
    read_card(out)
    print(f"shipped {weights} as {out} ({(out / WEIGHTS).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
