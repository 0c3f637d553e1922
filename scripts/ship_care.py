"""Copy a trained refocusing U-Net into the package as the shipped ``care`` model, with a complete card.

    python scripts/ship_care.py MODEL_FOLDER --command "python scripts/train_care.py ..." \
        [--evaluation NAME=FILE.json ...] [--wall-time TEXT]

The weights and loss history are copied unchanged (the SHA-256 in the card stays valid); the card gains the
exact training command, every real series with its repository, commit, file, licence and hash
(``docs/latent-training-series.json``), the simulated data's sources and the evaluation records. The checkpoint
(optimizer state) is not shipped.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from latent_focus.models import read_card
from ship_analysis_synthesis import copy_into_package

SERIES = Path(__file__).resolve().parents[1] / "docs" / "latent-training-series.json"
SIMULATED = {"what": "simulated defocus stacks", "source": "scripts/make_training_data.py --optics wide: procedural "
             "specimens and planes of the scikit-image cells3d nuclei channel (BSD-3-Clause); Born-Wolf and "
             "Gibson-Lanni PSFs, brightfield angular-spectrum propagation, Poisson-Gaussian camera noise",
             "command": "python scripts/make_training_data.py SIM --cells3d cells3d_nuclei.tif --optics wide "
             "--widefield 80 --brightfield 30 --size 192 --seed 2025"}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--name", default="care")
    p.add_argument("--command", required=True, help="the exact training command")
    p.add_argument("--evaluation", action="append", default=[], metavar="NAME=FILE")
    p.add_argument("--wall-time", default="")
    args = p.parse_args(argv)
    card = read_card(args.model)
    evaluation = {}
    for item in args.evaluation:
        name, _, path = item.partition("=")
        evaluation[name] = json.loads(Path(path).read_text())
    training = {**card.training, "wall_time": args.wall_time} if args.wall_time else card.training
    card = replace(card, name=args.name, training_command=args.command, training=training,
                   training_data={**card.training_data, "simulated": SIMULATED,
                                  "real_series": json.loads(SERIES.read_text()),
                                  "held out of training": "the HeLa brightfield series (evaluation only)"},
                   evaluation=evaluation)
    copy_into_package(args.model, args.name, card)


if __name__ == "__main__":
    main()
