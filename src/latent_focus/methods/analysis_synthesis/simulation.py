"""Training and test samples for the analysis-synthesis pair: real in-focus content, simulated defocus, camera noise.

A *setting* is one microscope at one defocus: widefield fluorescence (a Born & Wolf, Gibson-Lanni or
measured bead PSF) or brightfield (angular-spectrum propagation of a weak phase and amplitude object).
:func:`make_settings` draws a bank of them from a seeded generator; :func:`make_samples` blurs random
crops of the content with random settings and adds Poisson-Gaussian camera noise.

The kernel the analysis network learns is, in both modalities, the objective's defocus PSF at the
plane's pixel size, cropped to ``K x K`` and normalised to sum 1: for widefield planes it is the blur
itself; for brightfield planes, where defocus is not a convolution, it says how far from focus the plane
is and how wide the objective's cone is, which is what the synthesis network needs to undo.

The synthesis target is the *residual* ``in-focus - defocused`` of the noise-free planes, in the units of
the noisy plane, where the in-focus plane is what the same microscope shows in focus (the content seen
through the in-focus PSF, or propagated by zero): the pair removes defocus, not the diffraction limit,
and leaves the camera noise as it was, so an in-focus plane has a residual of exactly zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...optics import (
    add_camera_noise,
    born_wolf_psf,
    brightfield_defocus,
    fft_convolve,
    gibson_lanni_psf,
    psf_from_bead_stack,
    psf_support_px,
    transmission_from_image,
)

MAX_FULL_KERNEL = 129  # widefield blur kernels are cut here (the energy beyond is a faint halo)
PAD = 48  # content margin around each crop, so that blur and propagation see real content at the edges


@dataclass(frozen=True)
class Setting:
    """One simulated microscope at one defocus."""

    modality: str  # "widefield" or "brightfield"
    kind: str  # born_wolf, gibson_lanni, bead, brightfield
    kernel: np.ndarray  # (K, K) float32, sums to 1: what the analysis network learns
    blur: np.ndarray | None  # widefield: the full kernel that blurs the content
    focus: np.ndarray | None  # widefield: the same optics' in-focus PSF (the in-focus plane is content * focus)
    z_um: float
    pixel_um: float
    na: float
    optics: dict

    @property
    def blur_radius_px(self) -> float:
        """Radius of the defocus disc in pixels: geometric ``|z| tan(asin(NA/n)) / pixel`` for the PSF models, from
        the kernel's spread (:func:`kernel_radius`) for a measured bead."""
        if self.kind == "bead":
            return kernel_radius(self.blur)
        n = self.optics.get("n_immersion", 1.0)
        s = min(self.na / n, 0.999)
        return abs(self.z_um) * s / math.sqrt(1 - s * s) / self.pixel_um


def kernel_radius(kernel: np.ndarray) -> float:
    """Radius (pixels) of the uniform disc with the kernel's spread: ``sqrt(2)`` times its RMS distance from the
    centre pixel; about 0.6 px for a sharp in-focus PSF."""
    k = np.asarray(kernel, dtype=np.float64)
    c = k.shape[0] // 2
    yy, xx = np.mgrid[-c:k.shape[0] - c, -c:k.shape[1] - c]
    return float(np.sqrt(2 * (k * (yy ** 2 + xx ** 2)).sum() / k.sum()))


def centre_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """``kernel`` cropped (or zero-padded) to ``size x size`` about its centre, normalised to sum 1."""
    k = np.asarray(kernel, dtype=np.float64)
    h = k.shape[0]
    if h < size:
        p = (size - h) // 2
        k = np.pad(k, p)
    elif h > size:
        c = h // 2
        k = k[c - size // 2:c + size // 2 + 1, c - size // 2:c + size // 2 + 1]
    k = np.clip(k, 0, None)
    return (k / k.sum()).astype(np.float32)


def _z_for_radius(radius_px: float, na: float, n: float, pixel_um: float) -> float:
    s = min(na / n, 0.999)
    return radius_px * pixel_um * math.sqrt(1 - s * s) / s


def _radius(rng: np.random.Generator, max_radius: float, in_focus: float) -> float:
    """Blur radius in pixels: 0 with probability ``in_focus``, else uniform in (0.3, max_radius)."""
    return 0.0 if rng.random() < in_focus else float(rng.uniform(0.3, max_radius))


def make_settings(rng: np.random.Generator, n_widefield: int, n_brightfield: int, kernel_size: int,
                  bead=None, max_radius: float = 22.0, in_focus: float = 0.12) -> list[Setting]:
    """A bank of random widefield and brightfield settings with their kernels.

    ``bead`` is a measured widefield bead :class:`~latent_focus.io.Stack` (with z positions and a pixel size
    in ``bead.pixel_size_um`` or 0.1 um); without it widefield settings use the PSF models only. Blur radii
    are drawn up to ``max_radius`` pixels (further than the kernel reaches, so that the pair also learns
    planes blurred beyond it), a fraction ``in_focus`` of the settings in focus.
    """
    out = []
    for _ in range(n_widefield):
        kinds = ["born_wolf", "born_wolf", "gibson_lanni"] + (["bead"] if bead is not None else [])
        kind = kinds[int(rng.integers(len(kinds)))]
        px = float(rng.uniform(0.1, 0.35))
        if kind == "bead":
            z_max = min(abs(bead.z_um - bead.z_um[np.argmax(bead.data.max(axis=(1, 2)))]).max(), 4.5)
            z = 0.0 if rng.random() < in_focus else float(rng.uniform(-z_max, z_max))
            blur, focus = (psf_from_bead_stack(bead.data, bead.z_um, bead.pixel_size_um or 0.1, px, zi)
                           for zi in (z, 0.0))
            blur = centre_kernel(blur, min(blur.shape[0], MAX_FULL_KERNEL))
            optics = {"bead": True}
            na = 1.0  # the bead's objective is not recorded; only the kernel matters
        else:
            n = float(rng.choice([1.0, 1.33, 1.515]))
            na = float(rng.uniform(0.3, 0.95 * n if n > 1 else 0.95))
            wl = float(rng.uniform(0.45, 0.65))
            r = _radius(rng, max_radius, in_focus)
            z = _z_for_radius(r, na, n, px) * (1 if rng.random() < 0.5 else -1)
            optics = {"n_immersion": n, "wavelength_um": wl}
            if kind == "gibson_lanni":
                n_s, depth = float(rng.uniform(1.33, 1.40)), float(rng.uniform(0, 8))
                na = min(na, n_s * 0.98)
                size = psf_support_px(abs(z) + abs(depth * (n - n_s)), na, wl, n, px, max_size=MAX_FULL_KERNEL)
                blur = gibson_lanni_psf(z, na, wl, n, n_s, depth, px, max(size, kernel_size))
                focus = gibson_lanni_psf(0.0, na, wl, n, n_s, depth, px, kernel_size)
                optics.update(n_sample=n_s, depth_um=depth)
            else:
                size = psf_support_px(z, na, wl, n, px, max_size=MAX_FULL_KERNEL)
                blur = born_wolf_psf(z, na, wl, n, px, max(size, kernel_size))
                focus = born_wolf_psf(0.0, na, wl, n, px, kernel_size)
        out.append(Setting("widefield", kind, centre_kernel(blur, kernel_size), blur.astype(np.float32),
                           centre_kernel(focus, kernel_size), z, px, na, optics))
    for _ in range(n_brightfield):
        px = float(rng.uniform(0.15, 0.35))
        na = float(rng.uniform(0.25, 0.8))
        r = _radius(rng, 2 * max_radius, in_focus)
        z = _z_for_radius(r, na, 1.0, px) * (1 if rng.random() < 0.5 else -1)
        optics = {"n_immersion": 1.0, "wavelength_um": 0.55, "na_condenser": float(rng.uniform(0.1, 0.9) * na)}
        size = psf_support_px(z, na, 0.55, 1.0, px, max_size=MAX_FULL_KERNEL)
        kernel = born_wolf_psf(z, na, 0.55, 1.0, px, max(size, kernel_size))
        out.append(Setting("brightfield", "brightfield", centre_kernel(kernel, kernel_size), None, None, z, px, na,
                           optics))
    return out


# -- in-focus content ----------------------------------------------------------------------------------------

def procedural_content(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random field of blobs and curved filaments (mitochondria-, vesicle- and microtubule-like), >= 0."""
    img = np.zeros((size, size), dtype=np.float64)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(int(rng.integers(5, 40))):
        cy, cx = rng.uniform(0, size, 2)
        sy, sx = rng.uniform(0.8, 6, 2)
        a = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u, v = dy * np.cos(a) + dx * np.sin(a), -dy * np.sin(a) + dx * np.cos(a)
        img += rng.uniform(0.2, 1) * np.exp(-0.5 * ((u / sy) ** 2 + (v / sx) ** 2))
    for _ in range(int(rng.integers(0, 12))):
        n = 200
        angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.05, n))
        y = rng.uniform(0, size) + np.cumsum(np.sin(angle)) * rng.uniform(0.5, 1.5)
        x = rng.uniform(0, size) + np.cumsum(np.cos(angle)) * rng.uniform(0.5, 1.5)
        keep = (y >= 0) & (y < size) & (x >= 0) & (x < size)
        np.add.at(img, (y[keep].astype(int), x[keep].astype(int)), rng.uniform(0.3, 1.0))
    img = fft_convolve(img, _gaussian(float(rng.uniform(0.5, 1.2))), mode="wrap")
    return np.clip(img, 0, None)


def _gaussian(sigma: float) -> np.ndarray:
    r = int(np.ceil(3 * sigma))
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


def content_crop(planes: list[np.ndarray], rng: np.random.Generator, size: int, procedural: float) -> np.ndarray:
    """A ``size x size`` in-focus crop: from ``planes`` (rotated, flipped, gamma-changed) or procedural."""
    if not planes or rng.random() < procedural:
        return procedural_content(rng, size)
    img = planes[int(rng.integers(len(planes)))]
    reps = int(np.ceil(size / min(img.shape)))
    if reps > 1:
        img = np.pad(img, ((0, img.shape[0] * (reps - 1)), (0, img.shape[1] * (reps - 1))), mode="symmetric")
    y = int(rng.integers(0, img.shape[0] - size + 1))
    x = int(rng.integers(0, img.shape[1] - size + 1))
    crop = np.rot90(img[y:y + size, x:x + size], int(rng.integers(4)))
    crop = crop[:, ::-1] if rng.integers(2) else crop
    crop = np.clip(crop - np.percentile(crop, 2), 0, None)
    return crop ** float(rng.uniform(0.8, 1.25))


# -- samples ---------------------------------------------------------------------------------------------------

@dataclass
class Sample:
    """One simulated plane, normalised like the method normalises planes, with its targets."""

    x: np.ndarray  # (crop, crop) noisy defocused plane, percentiles (0.1, 99.9) -> (0, 1)
    residual: np.ndarray  # (crop, crop) noise-free in-focus minus defocused, in the same units
    kernel: np.ndarray  # (K, K)
    setting: Setting


def simulate(content: np.ndarray, setting: Setting, rng: np.random.Generator, crop: int,
             percentiles: tuple[float, float] = (0.1, 99.9)) -> Sample:
    """Blur ``content`` (at least ``crop + 2 * PAD`` a side) with ``setting``, add camera noise, crop and normalise."""
    gain = float(rng.uniform(0.5, 2.0))
    read = float(rng.uniform(1.0, 3.0))
    if setting.modality == "widefield":
        ref = float(np.percentile(content, 99.9)) or 1.0
        photons = float(np.exp(rng.uniform(np.log(50), np.log(20000))))
        sharp = fft_convolve(content / ref * photons, setting.focus, mode="reflect").astype(np.float64)
        blurred = (sharp if setting.z_um == 0 else
                   fft_convolve(content / ref * photons, setting.blur, mode="reflect").astype(np.float64))
        background = float(rng.uniform(0, 0.3)) * photons
    else:
        t = transmission_from_image(content, phase_rad=float(rng.uniform(0.3, 1.5)),
                                    absorption=float(rng.uniform(0.0, 0.15)))
        o = setting.optics
        planes = brightfield_defocus(t, [0.0, setting.z_um], o["wavelength_um"], setting.pixel_um, setting.na,
                                     o["na_condenser"], o["n_immersion"])
        photons = float(np.exp(rng.uniform(np.log(500), np.log(30000))))
        sharp, blurred = planes[0].astype(np.float64) * photons, planes[1].astype(np.float64) * photons
        background = 0.0
    noisy = add_camera_noise(np.clip(blurred, 0, None), gain=gain, read_noise_e=read, offset=100.0, bit_depth=16,
                             rng=rng, background_photons=background)
    residual = gain * (sharp - blurred)
    p = (content.shape[0] - crop) // 2
    noisy, residual = noisy[p:p + crop, p:p + crop], residual[p:p + crop, p:p + crop]
    lo, hi = np.percentile(noisy, percentiles)
    scale = max(float(hi - lo), 1e-6)
    return Sample(((noisy - lo) / scale).astype(np.float32), (residual / scale).astype(np.float32), setting.kernel,
                  setting)


def make_samples(planes: list[np.ndarray], settings: list[Setting], rng: np.random.Generator, n: int, crop: int,
                 widefield_fraction: float = 0.7, procedural: float = 0.3) -> list[Sample]:
    """``n`` samples: random content, a random setting of the drawn modality (``widefield_fraction``)."""
    by_modality = {m: [s for s in settings if s.modality == m] for m in ("widefield", "brightfield")}
    out = []
    for _ in range(n):
        modality = "widefield" if rng.random() < widefield_fraction else "brightfield"
        pool = by_modality[modality] or settings
        setting = pool[int(rng.integers(len(pool)))]
        out.append(simulate(content_crop(planes, rng, crop + 2 * PAD, procedural), setting, rng, crop))
    return out
