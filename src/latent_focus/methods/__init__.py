"""Restoration methods behind one interface: a registry, and one folder per method.

``list_methods()`` names them, ``get_method(name)`` gives the class (its ``Params``, input kind and
description), and ``load_method(name, model, device)`` the ready instance, loaded once per process. Adding
a method is a folder here plus one ``register`` line below.
"""

from __future__ import annotations

import threading
from importlib import import_module
from pathlib import Path

from ..errors import InputError
from ..progress import run
from .base import PAIR, PLANE, Method, Params, Progress, Restored, param

__all__ = ["PAIR", "PLANE", "Method", "Params", "Progress", "Restored", "get_method", "list_methods",
           "load_method", "param", "register", "run"]

_REGISTRY: dict[str, type[Method]] = {}
_LOADED: dict[tuple, Method] = {}
_LOAD_LOCK = threading.Lock()


def register(cls: type[Method]) -> type[Method]:
    """Add a :class:`Method` subclass to the registry under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a method named {cls.name!r} is already registered")
    if cls.input not in (PAIR, PLANE):
        raise ValueError(f"{cls.__name__}.input must be {PAIR!r} or {PLANE!r}")
    _REGISTRY[cls.name] = cls
    return cls


def list_methods() -> list[type[Method]]:
    """Every registered method class, in registration order."""
    return list(_REGISTRY.values())


def get_method(name: str) -> type[Method]:
    """The method class called ``name`` (:class:`InputError` listing the others when there is none)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}; pass one of {', '.join(_REGISTRY)} "
                         "(latent-focus methods lists them)") from None


def load_method(name: str, model: str | None = None, device: str = "auto") -> Method:
    """The method ``name`` with its weights, loaded once per process for each (model, device)."""
    cls = get_method(name)
    key = (name, _model_key(model) if cls.uses_model else None, device)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = cls.load(model, device) if cls.uses_model else cls.load(None, device)
        return _LOADED[key]


def forget_loaded(model_folder: str | None = None) -> None:
    """Drop loaded methods (those using ``model_folder``, or all), e.g. after a model was retrained."""
    with _LOAD_LOCK:
        for key in [k for k in _LOADED if model_folder is None or k[1] == _model_key(model_folder)]:
            del _LOADED[key]


def _model_key(model) -> str:
    if model is None:
        return "default"
    path = Path(str(model)).expanduser()
    return str(path.resolve()) if path.exists() else str(model)


# one line per method: the package below this one whose METHOD is the Method subclass
_BUILTIN = (
    "latent",
    "richardson_lucy",
    "analysis_synthesis",
    "psf_rl",
    "blur_code",
    "care",
)
for _module in _BUILTIN:
    register(import_module(f"{__name__}.{_module}").METHOD)
