"""Where models live: shipped with the package, or in a per-user folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import InputError
from .card import CARD
from .modelfile import read_card

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
DEFAULT_MODEL = "default"
ENV_MODELS_DIR = "LATENT_FOCUS_MODELS"


def user_models_dir() -> Path:
    """The per-user models folder: ``$LATENT_FOCUS_MODELS``, else the platform's data folder."""
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "latent-focus" / "models"


def model_output(output: str | os.PathLike) -> Path:
    """Where a model named on the command line is written: a bare name goes to :func:`user_models_dir`; a
    path (with a slash, or starting with ``.`` or ``~``) is taken as it is."""
    text = str(output)
    if "/" in text or os.sep in text or text.startswith((".", "~")):
        return Path(text).expanduser()
    return user_models_dir() / text


def model_argument(folder: str | os.PathLike) -> str:
    """The ``--model`` value that finds the model in ``folder`` from any directory."""
    folder = Path(folder).expanduser().resolve()
    if folder.parent == user_models_dir().resolve():
        return f"user:{folder.name}"
    return str(folder)


def list_models() -> dict[str, Path]:
    """Names of shipped and user models mapped to their folders (user models named ``user:NAME``)."""
    found: dict[str, Path] = {}
    for base, prefix in ((SHIPPED_DIR, ""), (user_models_dir(), "user:")):
        if base.is_dir():
            for d in sorted(base.iterdir()):
                if (d / CARD).is_file():
                    found[prefix + d.name] = d
    return found


def model_family(folder) -> str | None:
    """The preset family of the model in ``folder`` (None when it is not a readable model)."""
    from .registry import PRESETS

    try:
        preset = PRESETS.get(read_card(folder).preset)
    except InputError:
        return None
    return preset.family if preset is not None else None


def find_model(name_or_path: str | os.PathLike | None) -> Path:
    """Resolve ``None``/``"default"``, a shipped or user model name, or a folder path to a model folder."""
    key = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    path = Path(key).expanduser()
    if path.is_dir():
        read_card(path)
        return path
    models = list_models()
    for candidate in (key, f"user:{key}"):
        if candidate in models:
            return models[candidate]
    names = ", ".join(models) or "none installed"
    raise InputError(f"no model {key!r}; pass a model folder or one of: {names}")
