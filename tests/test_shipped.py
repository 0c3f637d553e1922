"""What the package ships: a trained default model with a complete card, the manifest, the sample."""

from pathlib import Path

import numpy as np

import latent_focus
from latent_focus import LatentFocus, read_stack
from latent_focus.models import find_model, read_card, read_history

PKG = Path(latent_focus.__file__).parent


RESERVED = ("elgw/deconwolf", "tlambert03/mrc", "bobbyali/sephace", "BioinfoTongLI/BFAutofocus")


def test_default_model_is_trained_and_documented():
    folder = find_model("default")
    card = read_card(folder)
    assert (folder / "weights.pt").stat().st_size < 20e6
    assert card.steps_done >= 1000 and "scripts/train_latent.py" in card.training_command
    assert len(read_history(folder)) > 100  # the loss history lives beside the card
    real = card.training_data["real_series"]
    assert len(real) >= 10 and {"widefield", "brightfield", "light-sheet"} <= {r["modality"] for r in real}
    for series in real:  # each real series named with where it came from, and never a reserved source
        assert series["repository"] and len(series["commit"]) == 40 and series["file"] and series["licence"]
        assert len(series["stack_sha256"]) == 64 and series["repository"] not in RESERVED
    assert card.training_data["simulated"]["stacks"]
    # the model it was fine-tuned from, and that one's parent, with their own training records
    assert len(card.training["fine_tuned_from_records"]) >= 2
    # training stacks named by file and identified by content, not by the folders they were trained from
    stacks = card.training["data"]
    assert stacks and all(Path(s["source"]).name == s["source"] and len(s["sha256"]) == 64 for s in stacks)


def test_default_rule_and_strength_are_the_ones_chosen_out_of_fold():
    from latent_focus.latent import AUTO_RECONSTRUCTION, AUTO_STEP

    card = read_card(find_model("default"))
    oof = card.evaluation["out_of_fold"]
    assert oof["rule_fitted_on_all"] == {"reconstruction_sigmas": AUTO_RECONSTRUCTION, "step": AUTO_STEP}
    assert card.deblur_strength["value"] == AUTO_STEP == LatentFocus(device="cpu").strength
    for modality in ("widefield", "brightfield", "light-sheet"):
        assert oof["out_of_fold"][modality]["pairs"] > 0
    steps = [p["stage2_steps"] for p in card.evaluation["learning_curve"]["curve"]]
    assert card.steps_done in steps  # the shipped step is a point of the out-of-fold learning curve


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

    code = ("import sys, latent_focus, latent_focus.cli, latent_focus.methods.latent.training, latent_focus.evaluate, "
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
