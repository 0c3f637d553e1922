"""Z-stacks in and out: TIFF / OME-TIFF files and folders of per-plane files, with per-stack normalisation.

Every reader returns a :class:`Stack` whose ``data`` is float32 with axes (z, y, x) in the file's own
intensity units. :class:`Normalizer` maps those units to the model's range and back exactly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from .errors import InputError
from .files import atomic_write

TIFF_SUFFIXES = (".tif", ".tiff")
_Z_DIR = re.compile(r"(?:^|[_\-])z_?(\d+)$", re.IGNORECASE)
_Z_NAME = re.compile(r"^(?P<pre>.*?)_z_?(?P<z>\d+)(?P<post>[^/]*)$", re.IGNORECASE)


@dataclass
class Stack:
    """A z-stack of one field of view.

    Attributes
    ----------
    data : ndarray, float32, shape (z, y, x)
        Intensities in the input's own units.
    z_um : ndarray or None, shape (z,)
        Focal position of each plane in micrometres, where the file says so.
    pixel_size_um : float or None
        Lateral pixel size in micrometres, where the file says so.
    dtype : numpy dtype
        The dtype the planes were stored in.
    source : str
        Where the stack came from.
    """

    data: np.ndarray
    z_um: np.ndarray | None = None
    pixel_size_um: float | None = None
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    source: str = ""
    channel: int | None = None  # the channel of a multi-channel file this stack was taken from

    @property
    def n_planes(self) -> int:
        return int(self.data.shape[0])

    def plane(self, index: int) -> np.ndarray:
        """Plane ``index`` (negative counts from the end) with a clear error when out of range."""
        check_plane_index(index, self.n_planes)
        return self.data[index]


def plane_positions(n_planes: int, z_um=None) -> np.ndarray:
    """Focal position of each plane: ``z_um`` (micrometres) where known, else the plane index."""
    if z_um is None:
        return np.arange(n_planes, dtype=float)
    pos = np.asarray(z_um, dtype=float).ravel()
    if pos.shape != (n_planes,):
        raise InputError(f"{pos.size} z positions for {n_planes} planes; give one z position per plane")
    return pos


def check_plane_index(index: int, n_planes: int) -> int:
    if not -n_planes <= index < n_planes:
        raise InputError(
            f"plane index {index} is out of range: this stack has {n_planes} planes, "
            f"pass an index from 0 to {n_planes - 1}"
        )
    return index % n_planes


def check_planes(data: np.ndarray, what: str = "stack") -> np.ndarray:
    """Validate a (z, y, x) float array: finite, non-empty, not constant per plane."""
    if data.ndim != 3:
        raise InputError(f"{what} must have axes (z, y, x); got an array with shape {data.shape}")
    if data.size == 0 or min(data.shape) == 0:
        raise InputError(f"{what} is empty (shape {data.shape}); pass a stack with at least one plane of pixels")
    if data.shape[1] < 8 or data.shape[2] < 8:
        raise InputError(f"{what} planes are {data.shape[1]}x{data.shape[2]} pixels; pass planes of at least 8x8")
    if not np.isfinite(data).all():
        raise InputError(f"{what} contains NaN or Inf values; replace them (e.g. with np.nan_to_num) and try again")
    flat = data.reshape(len(data), -1)
    constant = np.flatnonzero(flat.min(axis=1) == flat.max(axis=1))
    if constant.size:
        raise InputError(f"{what} plane {int(constant[0])} is constant (every pixel {flat[constant[0], 0]:g}); "
                         "pass planes that contain an image")
    return data


def read_stack(path: str | os.PathLike, channel: int | None = None, field: str | None = None,
               axes: str | None = None) -> Stack:
    """Read a z-stack from a TIFF/OME-TIFF file or a folder of per-plane TIFF files.

    Parameters
    ----------
    path : path
        A ``.tif``/``.tiff`` file with axes (z, y, x) or (z, c, y, x), or a folder in the BBBC006
        layout: sub-folders ``z0/ z1/ ...`` (or ``..._z_00``) each holding one file per field, or files
        named ``<field>_z00<rest>.tif`` side by side.
    channel : int, optional
        Channel to take from a (z, c, y, x) file. Required when the file has several channels; a file
        without a channel axis takes none (or 0, its one channel).
    field : str, optional
        File name (folder layout) or name prefix identifying one field when a folder holds several.
    axes : str, optional
        The file's axes in order, one letter per dimension of its pixel array from z, c, y and x (``"zyx"``,
        ``"zcyx"``, ...), where the file's own are missing or wrong: a stack of 3 or 4 planes written by plain
        ``tifffile.imwrite`` is stored as colour samples. In a folder, the axes of each file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; pass a TIFF z-stack or a folder of per-plane TIFF files")
    if path.is_dir():
        return _read_folder(path, field, channel, axes)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise InputError(f"{path.name} is not a TIFF file; pass a .tif/.tiff z-stack or a folder of TIFF planes")
    return _read_tiff(path, channel, axes)


def read_channels(path: str | os.PathLike, field: str | None = None, axes: str | None = None) -> list[Stack]:
    """Every channel of a z-stack as its own :class:`Stack` (one for a single-channel file or a folder).

    ``axes`` as in :func:`read_stack`.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() in TIFF_SUFFIXES:
        with _open_tiff(path) as tif:
            series = tif.series[0]
            found, shape = file_axes(series.axes, series.shape, axes, path.name), series.shape
        n_c = shape[found.index("C")] if "C" in found else (shape[found.index("S")] if "S" in found else 1)
        if n_c > 1:
            return [_read_tiff(path, c, axes) for c in range(n_c)]
    return [read_stack(path, field=field, axes=axes)]


def check_axes(text: str) -> str:
    """``--axes`` as typed (``zyx``, ``zcyx``, ...) as upper-case axes; :class:`InputError` for anything else."""
    axes = str(text).strip().upper()
    if not axes or set(axes) - set("ZCYX") or len(set(axes)) != len(axes) or not {"Y", "X"} <= set(axes):
        raise InputError(f"--axes takes one letter per dimension of the file, in order, each once, from z, c, y "
                         f"and x, with y and x (e.g. zyx or zcyx); got {text!r}")
    return axes


def file_axes(found: str, shape: tuple, axes: str | None, name: str) -> str:
    """The axes of a file's pixel array of ``shape``: ``axes`` when given (checked against it), else ``found``."""
    if axes is None:
        return found.upper()
    given = check_axes(axes)
    if len(given) != len(shape):
        raise InputError(f"{name} has {len(shape)} dimensions (shape {tuple(shape)}); --axes {axes.lower()} names "
                         f"{len(given)}: pass one letter per dimension")
    return given


def z_positions_of(path: str | os.PathLike, n_planes: int) -> np.ndarray | None:
    """Plane positions (um) a TIFF records (OME/ImageJ spacing or a ``z.txt`` beside it), for ``n_planes``."""
    path = Path(path)
    if not (path.is_file() and path.suffix.lower() in TIFF_SUFFIXES):
        return None
    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            _, z_um = _tiff_metadata(tif, path)
    except Exception:  # unreadable metadata: positions unknown
        return None
    return z_um if z_um is not None and len(z_um) == n_planes else None


def pixel_size_of(path: str | os.PathLike) -> float | None:
    """Pixel size (um) a TIFF records in its OME/ImageJ metadata, as :func:`read_stack` reads it; None if unknown."""
    path = Path(path)
    if not (path.is_file() and path.suffix.lower() in TIFF_SUFFIXES):
        return None
    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            pixel_size, _ = _tiff_metadata(tif, path)
    except Exception:  # unreadable metadata: pixel size unknown
        return None
    return pixel_size


@contextlib.contextmanager
def quiet_tifffile():
    """Keep tifffile's log off the console; yields the errors it logs meanwhile (the damage it finds in a file)."""
    logger = logging.getLogger("tifffile")
    handler, propagate = _Errors(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


class _Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(re.sub(r"<[^>]*>\s*", "", record.getMessage()))


@contextlib.contextmanager
def _open_tiff(path: Path):
    """The open TIFF file; one :class:`InputError` line when it cannot be opened or tifffile finds it damaged."""
    with quiet_tifffile() as damage:
        try:
            tif = tifffile.TiffFile(path)
        except Exception as exc:  # tifffile raises many types for damaged files
            raise InputError(f"cannot read {path.name} as TIFF ({exc}); pass an intact TIFF file") from None
        with tif:
            yield tif
        if damage:
            raise InputError(f"{path.name} is damaged or truncated ({damage[0]}); pass an intact TIFF file")


def _read_tiff(path: Path, channel: int | None, axes: str | None = None) -> Stack:
    with _open_tiff(path) as tif:
        try:
            series = tif.series[0]
            data = series.asarray()
        except MemoryError:
            raise _too_large(path.name, tif.series[0].shape) from None
        except Exception as exc:
            raise InputError(f"cannot read the pixels of {path.name} ({exc}); pass an intact TIFF file") from None
        axes = file_axes(series.axes, data.shape, axes, path.name)
        pixel_size, z_um = _tiff_metadata(tif, path)
    dtype = data.dtype
    data = _to_zyx(data, axes, channel, path.name)
    if z_um is not None and len(z_um) != data.shape[0]:
        z_um = None
    try:
        return Stack(_as_float(data, path.name), z_um, pixel_size, dtype, str(path), channel)
    except MemoryError:
        raise _too_large(path.name, data.shape) from None


def _too_large(name: str, shape: tuple) -> InputError:
    gib = 4 * float(np.prod(shape, dtype=np.float64)) / 2 ** 30
    return InputError(f"{name} claims {' x '.join(map(str, shape))} pixels ({gib:.3g} GiB as float32), more than "
                      "this machine's memory holds; pass an intact TIFF file, or a crop of a large one")


def _to_zyx(data: np.ndarray, axes: str, channel: int | None, name: str) -> np.ndarray:
    """Reduce an array with tifffile axes to (z, y, x), taking one channel where needed."""
    data = np.asarray(data)
    # Drop singleton axes other than y/x (time, sample, ...), keep Z and C.
    keep = []
    for i, ax in enumerate(axes):
        if ax in "YX" or ax in "ZC" or data.shape[i] > 1:
            keep.append(i)
    squeeze = tuple(i for i in range(data.ndim) if i not in keep)
    data = data.squeeze(axis=squeeze) if squeeze else data
    axes = "".join(axes[i] for i in keep)
    samples = "S" in axes and "C" not in axes
    if samples:  # RGB samples act as channels
        axes = axes.replace("S", "C")
    if "I" in axes and "Z" not in axes:  # plain multi-page TIFF: pages are planes
        axes = axes.replace("I", "Z")
    if "Q" in axes and "Z" not in axes:
        axes = axes.replace("Q", "Z", 1)
    unknown = set(axes) - set("ZCYX")
    if unknown:
        raise InputError(f"{name} has axes {axes} with shape {data.shape}; name them with --axes, one letter per "
                         "dimension from z, c, y and x (e.g. --axes zcyx)")
    if "C" not in axes and channel not in (None, 0):
        raise InputError(f"{name} has no channel axis; leave --channel out")
    if "C" in axes:
        n_c = data.shape[axes.index("C")]
        if n_c == 1 and channel is None:
            channel = 0
        if channel is None:
            planes = ", or, if they are z planes, pass --axes zyx" if samples and axes == "CYX" else ""
            raise InputError(f"{name} has {n_c} channels; choose one with --channel 0..{n_c - 1}{planes}")
        if not 0 <= channel < n_c:
            raise InputError(f"channel {channel} does not exist in {name}; pass --channel 0..{n_c - 1}")
        data = np.take(data, channel, axis=axes.index("C"))
        axes = axes.replace("C", "")
    if "Z" not in axes:
        data = data[None]
        axes = "Z" + axes
    if axes != "ZYX":
        data = np.transpose(data, [axes.index(a) for a in "ZYX"])
    return data


def _tiff_metadata(tif, path: Path) -> tuple[float | None, np.ndarray | None]:
    """Pixel size and plane positions (um) from OME/ImageJ metadata or a ``z.txt`` beside the file."""
    pixel_size = None
    dz = None
    try:
        if tif.is_ome and tif.ome_metadata:
            m = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', tif.ome_metadata)
            pixel_size = float(m.group(1)) if m else None
            m = re.search(r'PhysicalSizeZ="([0-9.eE+-]+)"', tif.ome_metadata)
            dz = float(m.group(1)) if m else None
        elif tif.is_imagej and tif.imagej_metadata:
            ij = tif.imagej_metadata
            dz = float(ij["spacing"]) if ij.get("spacing") else None
            tag = tif.pages[0].tags.get("XResolution")
            if tag is not None and str(ij.get("unit", "")).lower() in ("micron", "um", "\\u00b5m", "µm"):
                num, den = tag.value
                pixel_size = den / num if num else None
    except (KeyError, ValueError, TypeError, AttributeError):
        pass
    z_um = None
    series = tif.series[0]
    if dz and dz > 0 and "Z" in series.axes.upper():
        z_um = np.arange(series.shape[series.axes.upper().index("Z")], dtype=np.float64) * dz
    txt = path.with_name("z.txt")
    if txt.exists():
        try:
            z_um = np.loadtxt(txt, ndmin=2)[:, -1].astype(np.float64)
        except ValueError:
            pass
    if z_um is not None and not np.isfinite(z_um).all():  # e.g. a z.txt of NaN: spacing unknown
        z_um = None
    return pixel_size, z_um


def _as_float(data: np.ndarray, name: str) -> np.ndarray:
    if data.dtype.kind not in "uif":
        raise InputError(f"{name} holds {data.dtype} pixels; pass integer or floating-point intensities")
    return check_planes(np.ascontiguousarray(data, dtype=np.float32), name)


def _read_folder(path: Path, field: str | None, channel: int | None, axes: str | None) -> Stack:
    subdirs = sorted((d for d in path.iterdir() if d.is_dir() and _Z_DIR.search(d.name)),
                     key=lambda d: int(_Z_DIR.search(d.name).group(1)))
    if subdirs:
        files_per_dir = [{f.name: f for f in d.iterdir() if f.suffix.lower() in TIFF_SUFFIXES} for d in subdirs]
        common = sorted(set.intersection(*(set(f) for f in files_per_dir)))
        if not common:
            raise InputError(f"the z folders in {path} share no file name; each z folder needs one file per field")
        name = _pick_field(common, field, path)
        files = [f[name] for f in files_per_dir]
    else:
        groups: dict[str, list[tuple[int, Path]]] = {}
        for f in path.iterdir():
            if f.suffix.lower() not in TIFF_SUFFIXES:
                continue
            m = _Z_NAME.match(f.stem)
            if m:
                groups.setdefault(m.group("pre") + "*" + m.group("post"), []).append((int(m.group("z")), f))
        if not groups:
            raise InputError(
                f"{path} holds no z-stack: expected sub-folders z0/, z1/, ... or files named like name_z00.tif"
            )
        key = _pick_field(sorted(groups), field, path)
        files = [f for _, f in sorted(groups[key])]
    planes = []
    dtype = None
    for f in files:
        stack = _read_tiff(f, channel, axes)
        if stack.n_planes != 1:
            raise InputError(f"{f} holds {stack.n_planes} planes; a folder layout needs one plane per file")
        planes.append(stack.data[0])
        dtype = stack.dtype
    shapes = {p.shape for p in planes}
    if len(shapes) != 1:
        raise InputError(f"the planes in {path} differ in size ({sorted(shapes)}); pass planes of one size")
    return Stack(np.stack(planes), None, None, np.dtype(dtype), str(path), channel)


def _pick_field(names: list[str], field: str | None, path: Path) -> str:
    if field is None:
        if len(names) == 1:
            return names[0]
        shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        raise InputError(f"{path} holds {len(names)} fields ({shown}); choose one with --field NAME")
    hits = [n for n in names if n == field] or [n for n in names if n.startswith(field)]
    if len(hits) != 1:
        raise InputError(f"--field {field!r} matches {len(hits)} of the fields in {path}; pass a unique name")
    return hits[0]


class Normalizer:
    """Affine map of intensities to the model range: ``low`` -> 0, ``high`` -> 1, with an exact inverse."""

    def __init__(self, low: float, high: float):
        if not np.isfinite([low, high]).all() or high <= low:
            raise InputError("the stack has constant intensity; pass planes that contain an image")
        self.low = float(low)
        self.high = float(high)

    @classmethod
    def from_data(cls, data: np.ndarray, percentiles: tuple[float, float] = (0.1, 99.9)) -> "Normalizer":
        """Robust percentiles of ``data`` (a sample of at most ~1M pixels for speed)."""
        flat = np.asarray(data, dtype=np.float32).ravel()
        if flat.size > 1_000_000:
            flat = flat[:: flat.size // 1_000_000]
        low, high = np.percentile(flat, percentiles)
        if high <= low:  # very sparse images: fall back to the full range
            low, high = float(flat.min()), float(flat.max())
        return cls(low, high)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.low) / (self.high - self.low)).astype(np.float32)

    def denormalize(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float32) * (self.high - self.low) + self.low).astype(np.float32)

    def to_dict(self) -> dict:
        return {"low": self.low, "high": self.high}


def check_output_path(path: str | os.PathLike, overwrite: bool = False, inputs=()) -> Path:
    """``path`` as a Path when a TIFF may be written there; :class:`InputError` otherwise (nothing is lost).

    ``inputs`` are the command's input files or folders: the output may never be one of them (nor, for a
    folder, a file inside it), even with ``overwrite``.
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise InputError(f"output {path} must end in .tif or .tiff")
    for item in inputs:
        item = Path(item)
        same = path.exists() and item.exists() and os.path.samefile(path, item)
        if same or path.resolve() == item.resolve() or (item.is_dir() and item.resolve() in path.resolve().parents):
            raise InputError(f"output {path} would write over the input {item}; choose another output file")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another output or pass --overwrite")
    if not path.parent.exists():
        raise InputError(f"the folder {path.parent} does not exist; create it or choose another output")
    return path


def write_tiff(path: str | os.PathLike, data: np.ndarray, overwrite: bool = False,
               provenance: dict | None = None, pixel_size_um: float | None = None, z_um=None) -> Path:
    """Write ``data`` ((y, x) or (z, y, x)) as a float32 ImageJ TIFF atomically (temporary file, then rename).

    ``provenance`` (method, model, planes, ...) is stored as JSON in the ImageJ ``Info`` field and read back
    by :func:`read_provenance`; ``pixel_size_um`` sets the resolution, ``z_um`` the plane positions (the
    z spacing, and the positions themselves in the provenance). Raises :class:`InputError` when ``path``
    exists and ``overwrite`` is false, so nothing is lost.
    """
    path = check_output_path(path, overwrite)
    data = np.asarray(data, dtype=np.float32)
    info = dict(provenance or {})
    meta = {"axes": "ZYX" if data.ndim == 3 else "YX"}
    kwargs = {}
    if pixel_size_um:
        kwargs["resolution"] = (1.0 / pixel_size_um, 1.0 / pixel_size_um)
        meta["unit"] = "um"
    if z_um is not None and data.ndim == 3 and len(z_um) == len(data):
        z = [float(v) for v in z_um]
        info["z_um"] = z
        if len(z) > 1 and float(np.median(np.abs(np.diff(z)))) > 0:
            meta["spacing"] = float(np.median(np.abs(np.diff(z))))
            meta["unit"] = "um"
    if info:
        meta["Info"] = json.dumps(info, default=_json_value)
    atomic_write(path, lambda tmp: tifffile.imwrite(tmp, data, imagej=True, metadata=meta, **kwargs))
    return path


def read_provenance(path: str | os.PathLike) -> dict:
    """The provenance :func:`write_tiff` stored in a TIFF (empty when it holds none)."""
    with _open_tiff(Path(path)) as tif:
        info = (tif.imagej_metadata or {}).get("Info")
    try:
        return json.loads(info) if info else {}
    except ValueError:
        return {}


def _json_value(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
