"""Reading z-stacks out of napari image layers and writing results back as layers."""

from __future__ import annotations

import numpy as np
from napari.layers import Image


def is_stack_layer(layer) -> bool:
    """Image layers with a z axis: greyscale, single-scale, at least 3 dimensions."""
    return isinstance(layer, Image) and layer.ndim >= 3 and not layer.rgb and not layer.multiscale


def data_position(layer, viewer) -> np.ndarray:
    """The viewer's current position in the layer's data coordinates (one value per layer axis)."""
    return np.asarray(layer.world_to_data(viewer.dims.point), dtype=float)


def current_plane(layer, viewer) -> int:
    """Index along the layer's z axis (third from last) that the viewer shows."""
    pos = data_position(layer, viewer)[layer.ndim - 3]
    return int(np.clip(round(pos), 0, layer.data.shape[layer.ndim - 3] - 1))


def leading_index(layer, viewer) -> tuple[int, ...]:
    """Indices of the axes before z (time, position, ...) that the viewer shows."""
    pos = data_position(layer, viewer)[: layer.ndim - 3]
    return tuple(int(np.clip(round(p), 0, n - 1)) for p, n in zip(pos, layer.data.shape))


def stack_of(layer, lead: tuple[int, ...]) -> np.ndarray:
    """The (z, y, x) stack of ``layer`` at leading indices ``lead``, in its own dtype (a view, not a copy)."""
    return np.asarray(layer.data[lead] if lead else layer.data)


def z_positions(layer) -> list | None:
    """Plane positions in micrometres recorded by the reader, if any."""
    z = layer.metadata.get("z_um")
    return list(z) if z is not None and len(z) == layer.data.shape[layer.ndim - 3] else None


def output_name(source: str, sharp: int, blurry: int) -> str:
    return f"{source} latent focus [{sharp},{blurry}]"


def show_plane(viewer, name: str, image: np.ndarray, template: dict, metadata: dict) -> None:
    """Put ``image`` into the layer called ``name``, creating it from ``template`` the first time."""
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = image
        layer.metadata.update(metadata)
    else:
        viewer.add_image(image, name=name, metadata=dict(metadata), **template)


def plane_template(layer) -> dict:
    """Display settings of a (y, x) result that overlays ``layer``."""
    return {"scale": tuple(layer.scale[-2:]), "translate": tuple(layer.translate[-2:]),
            "colormap": layer.colormap.name, "contrast_limits": tuple(layer.contrast_limits)}


def stack_template(layer, first_plane: int = 0) -> dict:
    """Display settings of a (z, y, x) result whose first plane sits at ``first_plane`` of ``layer``."""
    scale = tuple(layer.scale[-3:])
    translate = tuple(layer.translate[-3:])
    translate = (translate[0] + first_plane * scale[0], *translate[1:])
    return {"scale": scale, "translate": translate, "colormap": layer.colormap.name,
            "contrast_limits": tuple(layer.contrast_limits)}
