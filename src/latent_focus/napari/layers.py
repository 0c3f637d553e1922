"""Z-stacks out of napari image layers, and results back into new layers placed at their source planes' z.

A layer's axes are read from, in order: the plugin's own metadata (``axes``), the TIFF file napari read it
from (``layer.source.path``), its axis labels (``z``/``c``/``t``), or the napari convention that the last
three axes are (z, y, x). The chosen channel and the viewer's position on any other axis (time, ...)
select the (z, y, x) stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from napari.layers import Image

from ..io import Stack, pixel_size_of, z_positions_of
from .reader import z_spacing

PLUGIN_OUTPUT = "latent_focus_output"  # metadata key marking layers this plugin made


def is_image_stack(layer) -> bool:
    """Greyscale, single-scale image layers with at least 3 dimensions."""
    return isinstance(layer, Image) and layer.ndim >= 3 and not layer.rgb and not layer.multiscale


def is_image_plane(layer) -> bool:
    """Greyscale, single-scale image layers (2-D images count as one-plane stacks)."""
    return isinstance(layer, Image) and layer.ndim >= 2 and not layer.rgb and not layer.multiscale


def is_plugin_output(layer) -> bool:
    return bool(layer.metadata.get(PLUGIN_OUTPUT))


@dataclass(frozen=True)
class Axes:
    """Which axis of a layer is z and which (if any) is the channel; the last two are (y, x)."""

    z: int | None
    channel: int | None
    labels: str  # one letter per axis, e.g. "ZCYX"; "?" where unknown

    @property
    def described(self) -> str:
        names = {"Z": "z", "C": "c", "T": "t", "Y": "y", "X": "x"}
        return "(" + ", ".join(names.get(a, "?") for a in self.labels) + ")"


def layer_axes(layer) -> Axes:
    """The z and channel axes of ``layer`` (see the module docstring for where they come from)."""
    ndim = layer.ndim
    labels = _metadata_axes(layer) or _file_axes(layer) or _label_axes(layer)
    if labels is None:
        labels = "?" * (ndim - 3) + "ZYX" if ndim >= 3 else "YX"
    z = labels.index("Z") if "Z" in labels else None
    c = labels.index("C") if "C" in labels else None
    return Axes(z, c, labels)


def _metadata_axes(layer) -> str | None:
    axes = layer.metadata.get("axes")
    return axes.upper() if isinstance(axes, str) and len(axes) == layer.ndim else None


def _label_axes(layer) -> str | None:
    names = [str(a).lower() for a in getattr(layer, "axis_labels", ())]
    if len(names) != layer.ndim or not any(n in ("z", "c", "channel", "t", "time") for n in names):
        return None
    letter = {"z": "Z", "c": "C", "channel": "C", "t": "T", "time": "T", "y": "Y", "x": "X"}
    out = "".join(letter.get(n, "?") for n in names)
    return out[:-2] + "YX"


def _file_axes(layer) -> str | None:
    """Axes of the TIFF file napari's reader read ``layer`` from, matched to the layer's shape."""
    path = getattr(getattr(layer, "source", None), "path", None)
    if not path or Path(str(path)).suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes.upper(), series.shape
    except Exception:  # not readable as TIFF: fall back to the layer's own labels
        return None
    kept = [(a, n) for a, n in zip(axes, shape) if n > 1 or a in "YX"]
    axes = "".join("Z" if a in "IQ" else a for a, _ in kept)
    if "S" in axes and "C" not in axes:
        axes = axes.replace("S", "C")
    if tuple(n for _, n in kept) != tuple(layer.data.shape):
        return None
    return re.sub(r"[^ZCTYX]", "?", axes)


def data_position(layer, viewer) -> np.ndarray:
    """The viewer's current position in the layer's data coordinates (one value per layer axis)."""
    return np.asarray(layer.world_to_data(viewer.dims.point), dtype=float)


def _index_at(layer, viewer, axis: int) -> int:
    pos = data_position(layer, viewer)[axis]
    return int(np.clip(round(pos), 0, layer.data.shape[axis] - 1))


def current_plane(layer, viewer, axes: Axes | None = None) -> int:
    """Index along the layer's z axis of the plane the viewer shows (0 for a 2-D layer)."""
    axes = axes or layer_axes(layer)
    return 0 if axes.z is None else _index_at(layer, viewer, axes.z)


def current_channel(layer, viewer, axes: Axes | None = None) -> int:
    axes = axes or layer_axes(layer)
    return 0 if axes.channel is None else _index_at(layer, viewer, axes.channel)


def n_planes(layer, axes: Axes | None = None) -> int:
    axes = axes or layer_axes(layer)
    return 1 if axes.z is None else int(layer.data.shape[axes.z])


def n_channels(layer, axes: Axes | None = None) -> int:
    axes = axes or layer_axes(layer)
    return 1 if axes.channel is None else int(layer.data.shape[axes.channel])


def stack_index(layer, viewer, axes: Axes, channel: int) -> tuple:
    """Index into ``layer.data`` giving the (z, y, x) stack (or (y, x) plane) of ``channel`` where the viewer is."""
    index = []
    for axis in range(layer.ndim - 2):
        if axis == axes.z:
            index.append(slice(None))
        elif axis == axes.channel:
            index.append(int(channel))
        else:
            index.append(_index_at(layer, viewer, axis))
    return tuple(index)


def stack_of(layer, viewer, axes: Axes, channel: int, copy: bool = True,
             calibration: Calibration | None = None) -> Stack:
    """The (z, y, x) stack of ``channel`` at the viewer's position, with z positions and pixel size where known
    (``calibration``, read from the layer when not given)."""
    data = np.asarray(layer.data[stack_index(layer, viewer, axes, channel)])
    if axes.z is None:
        data = data[None]
    data = np.array(data, dtype=np.float32) if copy else data
    cal = calibration or layer_calibration(layer, axes)
    z = None if cal.z_um is None else np.asarray(cal.z_um, dtype=float)
    return Stack(data, z, cal.pixel_size_um, source=layer.name, channel=None if axes.channel is None else channel)


@dataclass(frozen=True)
class Calibration:
    """A layer's pixel size and plane positions in micrometres where known, and where each came from."""

    pixel_size_um: float | None
    z_um: tuple[float, ...] | None
    pixel_from: str = ""
    z_from: str = ""

    @property
    def described(self) -> str:
        """E.g. "z step 0.5 µm from file; pixel 0.256 µm from file"."""
        step = z_spacing(self.z_um)
        z = (f"z step {step:.3g} µm {self.z_from}" if step else
             "z positions " + self.z_from if self.z_um is not None else "no z positions: distances in planes")
        px = f"pixel {self.pixel_size_um:.3g} µm {self.pixel_from}" if self.pixel_size_um else "pixel size unknown"
        return f"{z}; {px}"


def layer_calibration(layer, axes: Axes | None = None) -> Calibration:
    """Pixel size and plane positions of ``layer``: this plugin's reader's metadata, else the TIFF file napari
    read it from (``layer.source.path``, read as :func:`latent_focus.io.read_stack` reads it)."""
    axes = axes or layer_axes(layer)
    n = n_planes(layer, axes)
    meta = layer.metadata
    where = "from file" if meta.get("source") else "from the layer's metadata"
    px, px_from = meta.get("pixel_size_um"), where
    z, z_from = meta.get("z_um"), where
    z = tuple(z) if z is not None and len(z) == n else None
    path = getattr(getattr(layer, "source", None), "path", None)
    if path and px is None:
        px, px_from = pixel_size_of(path), "from file"
    if path and z is None:
        found = z_positions_of(path, n)
        z, z_from = (None if found is None else tuple(found.tolist())), "from file"
    return Calibration(px, z, px_from if px else "", z_from if z is not None else "")


def unique_name(viewer, name: str) -> str:
    """``name``, or ``name [2]``, ``name [3]`` ... when a layer already has it."""
    if name not in viewer.layers:
        return name
    k = 2
    while f"{name} [{k}]" in viewer.layers:
        k += 1
    return f"{name} [{k}]"


def placed(layer, viewer, axes: Axes, channel: int, planes: list[int], images: list[np.ndarray]) -> tuple:
    """Results of ``planes`` as data of ``layer``'s dimensionality with scale and translate so that each
    sits at its source plane's z (and at the chosen channel and the viewer's time point); returns
    ``(data, {"scale": ..., "translate": ...})``.

    A contiguous run of planes becomes a stack starting at the first one; other selections a full-depth
    stack whose planes that were not restored are NaN (napari draws them empty).
    """
    planes = list(planes)
    if planes == list(range(planes[0], planes[0] + len(planes))):
        return _embed(layer, viewer, axes, channel, np.stack(images), planes[0], 1.0)
    zdata = np.full((n_planes(layer, axes), *images[0].shape), np.nan, dtype=np.float32)
    for p, image in zip(planes, images):
        zdata[p] = image
    return _embed(layer, viewer, axes, channel, zdata, 0, 1.0)


def placed_levels(layer, viewer, axes: Axes, channel: int, sharp: int, blurry: int,
                  images: list[np.ndarray]) -> tuple:
    """Blur-synthesis levels from plane ``sharp`` (first image) to ``blurry`` (last) spread evenly over the z
    between the two planes, as :func:`placed` does for planes."""
    n = len(images)
    if blurry < sharp:
        images, sharp, blurry = images[::-1], blurry, sharp
    step = (blurry - sharp) / max(n - 1, 1)
    return _embed(layer, viewer, axes, channel, np.stack(images), sharp, step)


def _embed(layer, viewer, axes: Axes, channel: int, zdata: np.ndarray, first: float, step: float) -> tuple:
    """(n, y, x) ``zdata`` whose plane k lies at source plane ``first + k * step``, in ``layer``'s dimensions."""
    scale, translate = list(layer.scale), list(layer.translate)
    index = stack_index(layer, viewer, axes, channel)
    shape = []
    for axis in range(layer.ndim - 2):
        if axis == axes.z:
            shape.append(len(zdata))
            translate[axis] += first * scale[axis]
            scale[axis] *= step
        else:
            shape.append(1)
            translate[axis] += index[axis] * scale[axis]
    data = (zdata if axes.z is not None else zdata[0]).reshape(*shape, *zdata.shape[-2:]).astype(np.float32)
    return data, {"scale": tuple(scale), "translate": tuple(translate)}


def display_template(layer) -> dict:
    """Colormap and contrast of ``layer``, for results shown over it."""
    return {"colormap": layer.colormap.name, "contrast_limits": tuple(layer.contrast_limits)}
