"""What the package ships: a trained default model with a complete card, the manifest, the sample."""

from pathlib import Path

import numpy as np

import latent_focus
from latent_focus import LatentFocus, read_stack
from latent_focus.evaluate import summarize
from latent_focus.models import find_model, read_card, read_history

PKG = Path(latent_focus.__file__).parent


def test_default_model_is_trained_and_documented():
    folder = find_model("default")
    card = read_card(folder)
    assert (folder / "weights.pt").stat().st_size < 20e6
    assert card.steps_done >= 1000
    assert card.training_command.startswith("latent-focus train")
    assert {s["licence"] for s in card.training_data["sources"]}
    assert len(read_history(folder)) > 100  # the loss history lives beside the card
    # every evaluation holds the summary evaluate_models.py writes today, with every field it has
    assert set(card.evaluation) == {"real_series", "simulated_held_out"}
    for results in card.evaluation.values():
        assert set(results["default"]) == set(summarize([]))
    stacks = [s for r in (card.training, card.training.get("base", {}).get("training", {}))
              for s in r.get("data", [])]
    # training stacks named by file and identified by content, not by the folders they were trained from
    assert stacks and all(Path(s["source"]).name == s["source"] and len(s["sha256"]) == 64 for s in stacks)


def test_default_model_deblurs_with_its_calibrated_strength():
    card = read_card(find_model("default"))
    fit = card.deblur_strength
    assert fit["command"].startswith("latent-focus calibrate") and fit["pairs"] > 0
    assert fit["value"] == max(fit["by_strength"], key=lambda r: r["mean_gain_db"])["strength"]
    assert 0 < fit["value"] < 1 and LatentFocus(device="cpu").strength == fit["value"]
    # calibrated on simulated stacks, never on the real series it is evaluated on
    assert all(st["source"].split("_")[0] in ("bead", "born", "gibson", "brightfield") for st in fit["stacks"])
    assert card.evaluation["real_series"]["default"]["strength"] == fit["value"]


def test_default_model_reconstructs_the_sample():
    stack = read_stack(PKG / "data" / "sample" / "nuclei_defocus.tif")
    engine = LatentFocus(device="cpu")
    norm = engine.normalizer(stack.data)
    x = norm.normalize(stack.data[4])
    rec = norm.normalize(engine.reconstruct(stack.data[4], norm))
    # a trained model reconstructs far better than the mean image would
    assert np.mean((rec - x) ** 2) < 0.05 * np.var(x)


def test_sample_has_known_focus_positions():
    stack = read_stack(PKG / "data" / "sample" / "nuclei_defocus.tif")
    assert stack.data.shape == (9, 256, 256)
    assert np.allclose(stack.z_um, np.arange(-4, 5))
    assert (PKG / "data" / "sample" / "SOURCE.txt").read_text().count("BSD-3-Clause")


def test_packaged_manifest_is_the_repository_manifest():
    root = Path(__file__).resolve().parents[1] / "napari.yaml"
    assert (PKG / "napari.yaml").read_text() == root.read_text()


def test_core_does_not_import_qt():
    import subprocess
    import sys

    code = ("import sys, latent_focus, latent_focus.cli, latent_focus.training, latent_focus.evaluate, "
            "latent_focus.methods, latent_focus.provenance; latent_focus.cli.build_parser(); "
            "bad = [m for m in ('qtpy', 'PyQt6', 'napari') if m in sys.modules]; assert not bad, bad")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_default_rule_helps_on_the_bundled_sample():
    """The sample must not contradict what the README and the panel promise: the default rule (what one click
    does) never loses to the recorded plane, and gains on the median pair."""
    from latent_focus.evaluate import method_cases
    from latent_focus.methods import load_method

    stack = read_stack(PKG / "data" / "sample" / "nuclei_defocus.tif")
    rows = method_cases(load_method("latent", None, "cpu"), stack, 4)
    gains = np.array([r["psnr"] - r["identity_psnr"] for r in rows])
    assert len(rows) == 12 and gains.min() > 0 and np.median(gains) > 0.3
    assert np.median([r["ssim"] - r["identity_ssim"] for r in rows]) > 0
