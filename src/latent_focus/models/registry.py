"""Presets: named architectures with a small builder each, and their input requirements."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..errors import InputError
from .analysis_synthesis import AnalysisSynthesis
from .disentangled import BlurCodeAutoencoder
from .multiscale import MultiScaleAutoencoder
from .paper import PaperAutoencoder
from .psf_estimator import PsfEstimator
from .unet import RefocusUNet


@dataclass(frozen=True)
class Preset:
    name: str
    builder: type
    kwargs: dict = field(default_factory=dict)
    summary: str = ""
    #: what the architecture is for: "autoencoder" (the latent method) or the name of the method it serves
    family: str = "autoencoder"

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
        Preset("analysis-synthesis", AnalysisSynthesis, {},
               "kernel analysis (cross-correlation layer) and kernel-guided U-Net synthesis, 33x33 kernels",
               family="analysis-synthesis"),
        Preset("analysis-synthesis-tiny", AnalysisSynthesis,
               {"analysis": {"features": 4, "width": 8, "head": 16},
                "synthesis": {"widths": (8, 16), "code": 16}},
               "a very small analysis-synthesis pair for tests", family="analysis-synthesis"),
        Preset("psf-estimator", PsfEstimator, {},
               "a 0.5 M-parameter CNN regressing defocus and astigmatism of a PSF model from one patch (psf-rl)",
               family="psf-estimator"),
        Preset("disentangled", BlurCodeAutoencoder,
               {"widths": (16, 32, 64, 96), "identity_channels": (8, 12, 16, 24), "unshuffle": 2, "blur_dim": 1},
               "identity code (multi-scale) and a 1-D blur code (Ritsema 2023); deblurs one plane by its blur code",
               family="blur-code"),
        Preset("ml-vae", BlurCodeAutoencoder,
               {"widths": (16, 32, 64, 96), "identity_channels": (8, 12, 16, 24), "unshuffle": 2, "blur_dim": 8,
                "variational": True},
               "ML-VAE baseline (Bouchacourt et al. 2018): Gaussian identity and 8-D blur codes, group evidence",
               family="blur-code"),
        Preset("care", RefocusUNet, {"widths": (16, 32, 64, 128)},
               "CARE-style U-Net (Weigert et al. 2018), 4 levels: supervised refocusing of one plane",
               family="care"),
        Preset("care-tiny", RefocusUNet, {"widths": (8, 16)}, "a very small refocusing U-Net for tests",
               family="care"),
    )
}


def build_model(preset: str) -> nn.Module:
    """A freshly initialised model of the named preset."""
    try:
        return PRESETS[preset].build()
    except KeyError:
        raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}") from None


def check_preset(preset: str, family: str) -> None:
    """:class:`InputError` naming the presets of ``family`` unless ``preset`` is one of them."""
    if preset not in PRESETS or PRESETS[preset].family != family:
        names = [n for n, p in PRESETS.items() if p.family == family]
        raise InputError(f"--preset must be one of {', '.join(names)}; got {preset!r}")
