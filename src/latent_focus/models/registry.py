"""Presets: named architectures with a small builder each, and their input requirements."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..errors import InputError
from .disentangled import BlurCodeAutoencoder
from .multiscale import MultiScaleAutoencoder
from .paper import PaperAutoencoder


@dataclass(frozen=True)
class Preset:
    name: str
    builder: type
    kwargs: dict = field(default_factory=dict)
    summary: str = ""

    def build(self) -> nn.Module:
        return self.builder(**self.kwargs)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("paper", PaperAutoencoder, {},
               "the CAIP 2023 autoencoder: 5 stride-2 convs 64-1024, 1024-channel latent at 1/32 scale"),
        Preset("compact", MultiScaleAutoencoder,
               {"widths": (16, 32, 64, 96), "latent_channels": (8, 12, 16, 24), "unshuffle": 2},
               "multi-scale latent (1/2, 1/4, 1/8, 1/16 scales); fast on a laptop CPU; the shipped default"),
        Preset("tiny", MultiScaleAutoencoder, {"widths": (8, 16, 32), "latent_channels": (4, 8, 8), "unshuffle": 2},
               "a very small multi-scale model for quick experiments and tests"),
        Preset("disentangled", BlurCodeAutoencoder,
               {"widths": (16, 32, 64, 96), "identity_channels": (8, 12, 16, 24), "unshuffle": 2, "blur_dim": 1},
               "identity code (multi-scale) and a 1-D blur code (Ritsema 2023); deblurs one plane by its blur code"),
        Preset("ml-vae", BlurCodeAutoencoder,
               {"widths": (16, 32, 64, 96), "identity_channels": (8, 12, 16, 24), "unshuffle": 2, "blur_dim": 8,
                "variational": True},
               "ML-VAE baseline (Bouchacourt et al. 2018): Gaussian identity and 8-D blur codes, group evidence"),
    )
}


def build_model(preset: str) -> nn.Module:
    """A freshly initialised model of the named preset."""
    try:
        return PRESETS[preset].build()
    except KeyError:
        raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}") from None
