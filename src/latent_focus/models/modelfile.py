"""Model folders: ``weights.pt`` (a plain state dict) beside ``card.json`` (:class:`ModelCard`).

Weights are loaded with ``torch.load(weights_only=True)``, so a model file can never execute code.
Every file is written atomically (temporary file, then rename) and the card records the weights'
SHA-256, so a half-copied or tampered model is caught on load.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..files import atomic_write
from .card import ModelCard, read_history, write_history
from .registry import build_model

WEIGHTS = "weights.pt"
CHECKPOINT = "checkpoint.pt"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(folder: str | os.PathLike, model: nn.Module, card: ModelCard,
               history: list[dict] | None = None) -> Path:
    """Write ``model``, its ``card`` and (optionally) its loss ``history`` into ``folder``, atomically per file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / WEIGHTS, lambda tmp: torch.save(state, tmp))
    if history is not None:
        write_history(folder, history)
    replace(card, weights_sha256=sha256_file(folder / WEIGHTS)).write(folder)
    return folder


SNAPSHOTS = "snapshots"


def keep_snapshot(folder: str | os.PathLike, step: int) -> Path:
    """Copy the weights of the model in ``folder`` to ``folder/snapshots/step_NNNNN.pt`` (for a learning curve)."""
    folder = Path(folder)
    out = folder / SNAPSHOTS / f"step_{step:05d}.pt"
    out.parent.mkdir(exist_ok=True)
    atomic_write(out, lambda tmp: shutil.copyfile(folder / WEIGHTS, tmp))
    return out


def snapshot_model(folder: str | os.PathLike, step: int, out: str | os.PathLike) -> Path:
    """A model folder ``out`` holding the weights ``folder`` kept at ``step``, with its card (steps and checksum
    set to the snapshot's) and its loss history up to that step."""
    folder, out = Path(folder), Path(out)
    weights = folder / SNAPSHOTS / f"step_{step:05d}.pt"
    if not weights.is_file():
        raise InputError(f"{folder} kept no weights at step {step} ({weights} is missing)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / WEIGHTS, lambda tmp: shutil.copyfile(weights, tmp))
    card = read_card(folder)
    card.training = {**card.training, "steps_done": step}
    write_history(out, [h for h in read_history(folder) if h.get("step", 0) <= step])
    replace(card, name=out.name, weights_sha256=sha256_file(out / WEIGHTS)).write(out)
    return out


def read_card(folder: str | os.PathLike) -> ModelCard:
    """The :class:`ModelCard` of a model folder (:class:`InputError` when missing or corrupt)."""
    return ModelCard.read(folder)


def load_model(folder: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelCard]:
    """Model (in eval mode, on ``device``) and card from a model folder. Never executes file content."""
    folder = Path(folder)
    card = read_card(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise InputError(f"{folder} has no {WEIGHTS}; the model folder is incomplete")
    if card.weights_sha256 and sha256_file(weights) != card.weights_sha256:
        raise InputError(f"{weights} does not match its card (checksum differs); the model file is corrupt")
    try:
        state = _load_tensors(weights)
    except Exception as exc:  # a pickle with code in it, or a damaged file: never executed, one line
        raise InputError(f"{weights} is not a plain weights file ({type(exc).__name__}: it holds objects other "
                         "than tensors, or is damaged); pass a model folder written by latent-focus train") from None
    try:
        model = build_model(card.preset)
        model.load_state_dict(state)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot load the weights in {weights} ({str(exc).splitlines()[0][:120]}); "
                         "the model file is corrupt") from None
    return model.to(device).eval(), card


def save_checkpoint(folder: str | os.PathLike, state: dict) -> Path:
    """Atomically write a training checkpoint (tensors, numbers, strings and lists only)."""
    path = Path(folder) / CHECKPOINT
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


def checkpoint_to_resume(output: str | os.PathLike | None, same_run: Callable[[dict], bool],
                         overwrite: bool = False, resume: bool = True) -> dict | None:
    """The checkpoint in ``output`` when ``same_run(checkpoint)`` says it is this run's (to resume), else None.

    An ``output`` that holds anything else is refused with :class:`InputError` unless ``overwrite``.
    """
    if output is None:
        return None
    output = Path(output)
    ckpt = load_checkpoint(output) if resume else None
    if ckpt is not None and same_run(ckpt):
        return ckpt
    if output.exists() and not overwrite and (not output.is_dir() or any(output.iterdir())):
        raise InputError(f"{output} already exists and holds another model or run; choose another output or "
                         "pass --overwrite")
    return None


def load_checkpoint(folder: str | os.PathLike) -> dict | None:
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return _load_tensors(path)
    except Exception as exc:
        raise InputError(f"the checkpoint {path} is corrupt or holds objects other than tensors "
                         f"({type(exc).__name__}); delete it to start afresh") from None


def _load_tensors(path: Path):
    """``torch.load`` of tensors only (never code), without torch's warnings about the file on the console."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)
