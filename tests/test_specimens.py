"""Procedural specimens and the wide-optics training stacks built from them."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile

from latent_focus.specimens import cells, filaments, puncta, random_specimen


def test_each_specimen_is_a_non_negative_image_with_structure():
    rng = np.random.default_rng(0)
    for kind in (puncta, filaments, cells):
        img = kind(96, rng)
        assert img.shape == (96, 96) and np.isfinite(img).all() and img.min() >= 0
        assert img.std() > 0.05 * img.max()


def test_real_planes_are_used_as_given_content():
    rng = np.random.default_rng(3)
    planes = np.random.default_rng(1).random((4, 80, 80))
    seen = {random_specimen(64, rng, planes)[1].split(" ")[0] for _ in range(40)}
    assert "plane" in seen and seen & {"puncta", "filaments", "cells"}


def test_wide_optics_stacks_record_their_optics_and_focus(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_training_data.py"
    cells3d = tmp_path / "c.tif"
    tifffile.imwrite(cells3d, np.random.default_rng(0).random((8, 64, 64)).astype(np.float32))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(script), str(out), "--cells3d", str(cells3d),
                           "--optics", "wide", "--widefield", "2", "--brightfield", "1", "--size", "64"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    recipe = json.loads((out / "recipe.json").read_text())
    assert [r["kind"] for r in recipe] == ["widefield", "widefield", "brightfield"]
    for r in recipe:
        stack = tifffile.imread(out / r["file"])
        assert stack.shape == (len(r["z_um"]), 64, 64) and 0.3 <= r["dz_depths_of_field"] <= 2.0
        assert min(abs(z) for z in r["z_um"]) < 1e-9  # one plane in focus
        assert 0.2 <= r["na"] <= 1.45 and 0.06 <= r["pixel_size_um"] <= 0.7
