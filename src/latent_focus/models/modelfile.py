"""Model folders: ``weights.pt`` (a plain state dict) beside ``card.json`` (what the model is).

Weights are loaded with ``torch.load(weights_only=True)``, so a model file can never execute code.
Every file is written atomically (temporary file, then rename) and the card records the weights'
SHA-256, so a half-copied or tampered model is caught on load.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..files import atomic_write
from ..latent import check_strength
from .registry import build_model

FORMAT = "latent-focus-model/1"
WEIGHTS = "weights.pt"
CARD = "card.json"
CHECKPOINT = "checkpoint.pt"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(folder: str | os.PathLike, model: nn.Module, card: dict) -> Path:
    """Write ``model`` and its ``card`` (must hold ``preset``) into ``folder``, atomically per file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / WEIGHTS, lambda tmp: torch.save(state, tmp))
    card = {**card, "format": FORMAT, "weights_sha256": sha256_file(folder / WEIGHTS)}

    def write_card(tmp):
        with open(tmp, "w") as f:
            json.dump(card, f, indent=1, default=_json_default)

    atomic_write(folder / CARD, write_card)
    return folder


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def read_card(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    path = folder / CARD
    if not path.is_file():
        raise InputError(f"{folder} is not a model folder (no {CARD}); pass a folder written by latent-focus train")
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"the model card {path} is corrupt ({exc}); retrain or pass another model") from None
    if card.get("format") != FORMAT or "preset" not in card:
        raise InputError(f"{path} is not a latent-focus model card; pass a folder written by latent-focus train")
    try:
        deblur_strength(card)
    except (InputError, AttributeError) as exc:
        raise InputError(f"{path} has a bad deblur_strength ({exc}); calibrate the model again") from None
    return card


def deblur_strength(card: dict) -> float:
    """The card's calibrated deblurring strength; 1 (Eq. 2 itself) when it has none."""
    return check_strength(card.get("deblur_strength", {}).get("value", 1.0))


def load_model(folder: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Model (in eval mode, on ``device``) and card from a model folder. Never executes file content."""
    folder = Path(folder)
    card = read_card(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise InputError(f"{folder} has no {WEIGHTS}; the model folder is incomplete")
    if card.get("weights_sha256") and sha256_file(weights) != card["weights_sha256"]:
        raise InputError(f"{weights} does not match its card (checksum differs); the model file is corrupt")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model = build_model(card["preset"])
        model.load_state_dict(state)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot load the weights in {weights} ({exc}); the model file is corrupt") from None
    return model.to(device).eval(), card


def save_checkpoint(folder: str | os.PathLike, state: dict) -> Path:
    """Atomically write a training checkpoint (tensors, numbers, strings and lists only)."""
    path = Path(folder) / CHECKPOINT
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


def load_checkpoint(folder: str | os.PathLike) -> dict | None:
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"the checkpoint {path} is corrupt ({exc}); delete it to start afresh") from None
