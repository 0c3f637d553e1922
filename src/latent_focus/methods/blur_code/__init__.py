"""``blur-code``: deblur one plane by decoding its identity code with the in-focus blur code (Ritsema 2023).

A ``disentangled`` model (or the ``ml-vae`` baseline) encodes a plane into an identity code and a blur
code (:mod:`latent_focus.models.disentangled`); decoding the identity code with the in-focus blur code
stored in the model card deblurs the plane, and any other code (``--code``) re-blurs it. With
``residual`` decoding the result is the plane plus the change the new code makes, ``x + D(c, b') - D(c, b)``,
so what the autoencoder does not reproduce (fine texture, noise) is kept; ``plain`` decodes ``D(c, b')``.
A plane whose code is already at or below the in-focus code is returned as it is (:func:`codes.deblur`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...device import describe
from ...engine import DEFAULT_TILE, LatentFocus
from ...errors import InputError
from ...io import Stack, check_plane_index
from ...models.store import find_model
from ..base import PLANE, Method, Params, Progress, Restored, param
from .codes import BlurAxis, check_engine, deblur_steps, decode_with_steps, mean_code
from .live import EncodedPlane, encode_plane, render
from .training import PRESETS as TRAIN_PRESETS
from .training import train_from_config

__all__ = ["DEFAULT_MODEL", "TRAIN_PRESETS", "BlurCodeMethod", "BlurCodeParams", "EncodedPlane", "encode_plane",
           "render", "train_from_config"]

DEFAULT_MODEL = "disentangled"
DECODINGS = ("model", "residual", "plain")


def parse_code(text) -> float | None:
    """``"focus"`` (or nothing) -> None (the model's in-focus code), else a finite number."""
    if text in (None, "", "focus", "auto"):
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"--code takes a blur code (a number) or 'focus'; got {text!r}") from None
    if not math.isfinite(value):
        raise InputError(f"--code must be a finite number; got {text!r}")
    return value


@dataclass(frozen=True)
class BlurCodeParams(Params):
    code: float | None = param(None, "blur code to decode the plane with (larger is blurrier; latent-focus "
                               "blur-code-score prints each plane's); default: the model's in-focus code",
                               parse=parse_code, label="blur code")
    decoding: str = param("model", "residual: the plane plus the change the new code makes; plain: the decoded "
                          "plane itself; model: what the model card says (residual when it says nothing)",
                          choices=DECODINGS)
    tile: int = param(DEFAULT_TILE, "planes larger than this many pixels run in overlapping tiles", min=64,
                      max=65536)


class BlurCodeMethod(Method):
    name = "blur-code"
    description = "identity code decoded with the in-focus blur code (disentangled model, Ritsema 2023)"
    input = PLANE
    Params = BlurCodeParams
    uses_model = True
    model_family = "blur-code"
    train_presets = TRAIN_PRESETS

    def __init__(self, engine: LatentFocus):
        self.engine = engine
        self.axis = BlurAxis.from_card(engine.card)

    @classmethod
    def load(cls, model: str | None = None, device: str = "auto") -> "BlurCodeMethod":
        name = DEFAULT_MODEL if model in (None, "default") else model
        if name == DEFAULT_MODEL:
            try:
                find_model(name)
            except InputError:
                raise InputError("no blur-code model is installed; train one with latent-focus train STACKS "
                                 "-o MODEL --preset disentangled and pass --model MODEL") from None
        return cls(check_engine(LatentFocus(name, device), str(name)))

    @classmethod
    def weights_source(cls) -> str:
        return (f"a disentangled or ml-vae model you train (none ships): latent-focus train STACKS -o MODEL --preset "
                f"disentangled, then --model MODEL (a model named {DEFAULT_MODEL!r} is used without --model)")

    @classmethod
    def commands(cls) -> list:
        from .score import COMMANDS
        return COMMANDS

    @classmethod
    def add_train_arguments(cls, parser) -> None:
        from .train_options import add_train_options
        add_train_options(parser)

    @classmethod
    def train_from_args(cls, stacks, args):
        from .train_options import train_from_args
        return train_from_args(stacks, args)

    @property
    def device_name(self) -> str:
        return self.engine.device_name

    def decoding(self, params: BlurCodeParams) -> str:
        """``residual`` or ``plain``: the parameter, or the model card's choice for ``model``."""
        if params.decoding != "model":
            return params.decoding
        return str(self.engine.card.extra.get("decoding", "residual"))

    def target(self, params: BlurCodeParams) -> np.ndarray:
        """The code vector to decode with: the in-focus code, or ``params.code`` on the blur axis."""
        if params.code is None:
            return self.axis.in_focus
        if self.axis.dim != 1:
            raise InputError(f"--code sets a 1-D blur code; model {self.engine.name!r} has {self.axis.dim}-D codes "
                             "(pass no --code to use its in-focus code)")
        return self.axis.vector(params.code)

    def extra_scores(self, stacks: list[Stack], focus: list[int]) -> dict[str, float]:
        """The ML-VAE score (Eq. 4.10) on crops of every plane of ``stacks``; see ``latent-focus blur-code-score``."""
        from .evaluation import model_mlvae_score

        score = model_mlvae_score(self.engine, stacks, [list(range(s.n_planes)) for s in stacks])
        return {"ML-VAE score": score.score, "identity accuracy (identity code)": score.identity_accuracy,
                "identity accuracy (blur code)": score.blur_accuracy, "chance": score.chance}

    def restore(self, stack: Stack, plane: int, params: BlurCodeParams, partner: int | None = None):
        plane = check_plane_index(plane, stack.n_planes)
        target = self.target(params)
        yield Progress(0, 1, "encoding")
        image = np.asarray(stack.data[plane], dtype=np.float32)
        enc = (yield from self.engine.encode_steps([image], self.engine.normalizer(stack.data),
                                                   plan=self.engine.plan(params.tile)))[0]
        own = self.axis.value(mean_code(enc))
        info = {"method": self.name, "model": self.engine.name, "device": describe(enc.plan.device), "plane": plane,
                "blur_code": round(own, 6), "in_focus_code": round(self.axis.focus_value, 6),
                "target_code": round(self.axis.value(target), 6), "decoding": self.decoding(params)}
        residual = info["decoding"] == "residual"
        if params.code is None:
            out, moved = yield from deblur_steps(self.engine, self.axis, enc, image, residual)
            info["rule"] = ("decoded with the in-focus code" if moved else
                            "the plane's blur code is at or below the in-focus code: kept as it is")
        else:
            out = yield from decode_with_steps(self.engine, enc, target, residual, image)
            info["rule"] = "decoded with --code"
        yield Progress(1, 1, "decoded")
        return Restored(out, info)


METHOD = BlurCodeMethod
