"""Deblur and synthesise defocus blur by moving through the latent space of an autoencoder."""

from .engine import Encoded, LatentFocus
from .errors import InputError
from .io import Normalizer, Stack, read_stack, write_tiff
from .latent import alpha_from_defocus, extrapolate, interpolate

__version__ = "0.1.0"

__all__ = ["Encoded", "InputError", "LatentFocus", "Normalizer", "Stack", "alpha_from_defocus",
           "extrapolate", "interpolate", "read_stack", "write_tiff"]
