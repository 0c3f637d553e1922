"""Autoencoder architectures, their presets, and model files on disk."""

from .modelfile import deblur_strength, load_model, read_card, save_model
from .multiscale import MultiScaleAutoencoder
from .paper import PaperAutoencoder
from .registry import PRESETS, build_model
from .store import find_model, list_models, user_models_dir

__all__ = ["PRESETS", "MultiScaleAutoencoder", "PaperAutoencoder", "build_model", "deblur_strength", "find_model",
           "list_models", "load_model", "read_card", "save_model", "user_models_dir"]
