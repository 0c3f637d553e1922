"""Shared fixtures: the real data beside the repository and a small trained model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LATENT_FOCUS_SHARED_DATA", REPO.parent / "shared" / "data"))
HELA = SHARED_DATA / "brightfield_hela_set1" / "stack.tif"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"real test data expected at {SHARED_DATA} (set LATENT_FOCUS_SHARED_DATA)"
    return SHARED_DATA


@pytest.fixture(scope="session")
def blurred_stack() -> np.ndarray:
    """A 7-plane synthetic defocus series (plane 0 sharpest) of a 96x96 random-blob image."""
    rng = np.random.default_rng(1)
    img = np.zeros((96, 96), np.float32)
    yy, xx = np.mgrid[:96, :96]
    for _ in range(25):
        cy, cx, r = rng.uniform(8, 88), rng.uniform(8, 88), rng.uniform(2, 6)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    f = np.fft.fft2(img)
    ky, kx = np.meshgrid(np.fft.fftfreq(96), np.fft.fftfreq(96), indexing="ij")
    planes = [np.real(np.fft.ifft2(f * np.exp(-2 * (np.pi * s) ** 2 * (kx ** 2 + ky ** 2)))) for s in range(7)]
    return (100 + 1000 * np.stack(planes)).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, blurred_stack) -> Path:
    """A tiny model trained for a few steps (enough to exercise every code path)."""
    from latent_focus.methods.latent.training import TrainConfig, train

    out = tmp_path_factory.mktemp("models") / "tiny"
    cfg = TrainConfig(preset="tiny", steps=6, batch_size=2, crop=64, device="cpu",
                      validate_every=3, checkpoint_every=3, val_fraction=0.0)
    for _ in train([blurred_stack], out, cfg):
        pass
    return out


@pytest.fixture(scope="session")
def method_models(tmp_path_factory, tiny_model, blurred_stack) -> dict:
    """A small model (trained for a few steps) for each method that needs one; the others load their shipped
    weights or none."""
    from latent_focus.io import Stack
    from latent_focus.methods.analysis_synthesis.training import Recipe
    from latent_focus.methods.analysis_synthesis.training import train as train_pair
    from latent_focus.methods.blur_code.training import BlurCodeConfig
    from latent_focus.methods.blur_code.training import train as train_blur_code
    from latent_focus.methods.care.training import CareRecipe
    from latent_focus.methods.care.training import train as train_care
    from latent_focus.pairs import FocusSeries

    folder = tmp_path_factory.mktemp("method_models")
    recipe = Recipe(preset="analysis-synthesis-tiny", steps=2, batch_size=2, crop=48, settings=4, val_samples=2,
                    validate_every=2, checkpoint_every=2, device="cpu")
    for _ in train_pair([Stack(blurred_stack[:1].copy())], folder / "pair", recipe):
        pass
    config = BlurCodeConfig(steps=2, batch_size=2, crop=32, device="cpu", validate_every=2, checkpoint_every=2,
                            delay=2)
    for _ in train_blur_code([blurred_stack], folder / "blur-code", config, focus=[0]):
        pass
    care = CareRecipe(preset="care-tiny", steps=2, batch_size=2, crop=32, val_samples=2, validate_every=2,
                      checkpoint_every=2, device="cpu")
    for _ in train_care([FocusSeries(Stack(blurred_stack), 0)], folder / "care", care):
        pass
    return {"latent": tiny_model, "analysis-synthesis": folder / "pair", "blur-code": folder / "blur-code",
            "care": folder / "care"}
