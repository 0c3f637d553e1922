"""Autoencoder architectures, their presets, model cards and model files on disk."""

from .card import ModelCard, read_history
from .modelfile import load_model, read_card, save_model
from .multiscale import MultiScaleAutoencoder
from .paper import PaperAutoencoder
from .registry import PRESETS, build_model
from .store import find_model, list_models, model_argument, model_family, model_output, user_models_dir

__all__ = ["PRESETS", "ModelCard", "MultiScaleAutoencoder", "PaperAutoencoder", "build_model", "find_model",
           "list_models", "load_model", "model_argument", "model_family", "model_output", "read_card", "read_history",
           "save_model", "user_models_dir"]
