"""Recompute the blur-code facts of a model card (``extra.blur_code``) from the model's training stacks.

    python scripts/refresh_blur_code.py MODEL_FOLDER STACK [STACK ...] --focus PLANE [PLANE ...]

For models saved before :func:`latent_focus.methods.blur_code.training.code_summary` changed: it encodes
the centre crops of every plane of the stacks the card lists as training data (matched by SHA-256; pass
the same files and focus planes as the training command) and rewrites the card. The weights are not touched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from latent_focus.io import read_stack
from latent_focus.methods.blur_code.sampling import prepare_sources
from latent_focus.methods.blur_code.training import code_summary
from latent_focus.models import load_model


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("stacks", nargs="+")
    p.add_argument("--focus", nargs="+", type=int, required=True)
    args = p.parse_args(argv)
    model, card = load_model(args.model)
    sources = prepare_sources([read_stack(s) for s in args.stacks], args.focus, card.percentiles,
                              card.training["recipe"]["crop"])
    trained = {d["sha256"] for d in card.training["data"]}
    used = [s for s in sources if s.sha256 in trained]
    if len(used) != len(trained):
        p.error(f"found {len(used)} of the card's {len(trained)} training stacks among the files given")
    card.extra["blur_code"] = code_summary(model, used, "cpu")
    card.write(args.model)
    print(f"{args.model}: in-focus code {card.extra['blur_code']['in_focus']}, axis {card.extra['blur_code']['axis']}")


if __name__ == "__main__":
    main()
