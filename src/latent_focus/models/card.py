"""The model card: what a model folder holds, as one typed object. The only code that reads or writes ``card.json``.

A model folder holds ``weights.pt`` (a plain state dict), ``card.json`` (this card) and, once trained,
``history.json`` (the loss history, kept apart so the card stays small). Every method's weights use the
same folder layout; method-specific settings (optics, in-focus codes, ...) live in :attr:`ModelCard.extra`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import InputError
from ..files import atomic_write
from ..latent import check_strength

FORMAT = "latent-focus-model/1"
CARD = "card.json"
HISTORY = "history.json"


@dataclass
class ModelCard:
    """What a model is, how it was made and how well it did.

    Attributes
    ----------
    preset : str
        Architecture preset (:data:`latent_focus.models.PRESETS`); the weights load into it.
    name, description, modality : str
        Shown in ``latent-focus models`` and the panel.
    percentiles : (float, float)
        Intensity percentiles mapped to 0 and 1 before the model sees a plane.
    deblur_strength : dict or None
        The calibrated fraction of Eq. 2's step (``{"value": s, ...provenance}``); None for none.
    training : dict
        Recipe, steps done, device, parent model and data of the training run.
    training_command, training_data, evaluation : command string and records kept with shipped models.
    seed : int or None
    created : str
        ISO time the weights were written.
    weights_sha256 : str
        Checksum of ``weights.pt``; a mismatch means a corrupt or tampered file.
    extra : dict
        Method-specific settings, e.g. an in-focus blur code or the optics of a PSF estimator.
    """

    preset: str
    name: str = ""
    description: str = ""
    modality: str = ""
    percentiles: tuple[float, float] = (0.1, 99.9)
    deblur_strength: dict | None = None
    training: dict = field(default_factory=dict)
    training_command: str = ""
    training_data: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    seed: int | None = None
    created: str = ""
    weights_sha256: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def strength(self) -> float:
        """The calibrated deblurring strength; 1 (Eq. 2 itself) when the card has none."""
        return check_strength((self.deblur_strength or {}).get("value", 1.0))

    @property
    def steps_done(self) -> int:
        return int(self.training.get("steps_done", 0))

    @property
    def steps_planned(self) -> int:
        return int(self.training.get("recipe", {}).get("steps", 0))

    def to_json(self) -> dict:
        d = asdict(self)
        d["normalization"] = {"percentiles": list(d.pop("percentiles"))}
        return {"format": FORMAT, **{k: v for k, v in d.items() if v not in (None, "", {}) or k == "preset"}}

    @classmethod
    def from_json(cls, d: dict, where: str = "card") -> "ModelCard":
        if not isinstance(d, dict) or d.get("format") != FORMAT or "preset" not in d:
            raise InputError(f"{where} is not a latent-focus model card; pass a folder written by latent-focus train")
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        pct = d.get("normalization", {}).get("percentiles")
        if pct is not None:
            kwargs["percentiles"] = tuple(float(p) for p in pct)
        card = cls(**kwargs)
        try:
            card.strength
        except (InputError, AttributeError, TypeError) as exc:
            raise InputError(f"{where} has a bad deblur_strength ({exc}); calibrate the model again") from None
        return card

    # -- files ----------------------------------------------------------------------------------
    @classmethod
    def read(cls, folder: str | os.PathLike) -> "ModelCard":
        folder = Path(folder)
        path = folder / CARD
        if not path.is_file():
            raise InputError(f"{folder} is not a model folder (no {CARD}); pass a folder written by latent-focus train")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"the model card {path} is corrupt ({exc}); retrain or pass another model") from None
        return cls.from_json(data, str(path))

    def write(self, folder: str | os.PathLike) -> Path:
        """Write ``card.json`` into ``folder`` atomically."""
        text = json.dumps(self.to_json(), indent=1, default=_json_default)
        path = Path(folder) / CARD
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))
        return path


def read_history(folder: str | os.PathLike) -> list[dict]:
    """The loss history of a model folder (one dict per step), empty when none was written."""
    path = Path(folder) / HISTORY
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise InputError(f"the loss history {path} is corrupt ({exc}); delete it or retrain") from None


def write_history(folder: str | os.PathLike, history: list[dict]) -> Path:
    text = json.dumps(history, default=_json_default)
    path = Path(folder) / HISTORY
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
