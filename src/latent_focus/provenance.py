"""Writing a method's results as TIFF files that say how they were made (method, model, planes, rule, version)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import Stack, write_tiff


def describe_run(results: list, stack: Stack, params=None) -> dict:
    """The provenance of ``results`` (each a :class:`~latent_focus.methods.Restored`) restored from ``stack``."""
    from . import __version__

    infos = [r.info for r in results]
    first = infos[0] if infos else {}
    record = {"software": f"napari-latent-focus {__version__}", "source": Path(stack.source).name or "array",
              "method": first.get("method", ""),
              "parameters": params.as_dict() if params is not None else {},
              "planes": infos if len(infos) > 1 else first}
    for key in ("model", "device"):
        if key in first:
            record[key] = first[key]
    if stack.pixel_size_um:
        record["pixel_size_um"] = stack.pixel_size_um
    return record


def output_positions(results: list, stack: Stack) -> list | None:
    """z positions (um) of the output planes: each result's ``plane``, where the stack records z."""
    if stack.z_um is None:
        return None
    idx = [r.info.get("plane") for r in results]
    if any(i is None for i in idx):
        return None
    return [float(stack.z_um[i]) for i in idx]


def write_result(path, results: list, stack: Stack, params=None, overwrite: bool = False,
                 single: bool = False) -> Path:
    """One result as a (y, x) TIFF (``single``), else all results as a (n, y, x) stack, with provenance."""
    data = results[0].image if single and len(results) == 1 else np.stack([r.image for r in results])
    z = output_positions(results, stack) if data.ndim == 3 else None
    return write_tiff(path, data, overwrite, describe_run(results, stack, params), stack.pixel_size_um, z)


def write_plain(path, data: np.ndarray, stack: Stack, info: dict, overwrite: bool = False) -> Path:
    """``data`` with the provenance ``info`` (plus the software version and the source)."""
    from . import __version__

    record = {"software": f"napari-latent-focus {__version__}", "source": Path(stack.source).name or "array",
              **info}
    return write_tiff(path, data, overwrite, record, stack.pixel_size_um)
