"""Training patches for the PSF estimator: real in-focus content seen through random optics, PSFs and cameras.

Each sample draws an objective (air, water or oil immersion; NA, wavelength) and a camera pixel (so that the
pupil cut-off spans under- and over-sampled cameras), a PSF of the parametric model (defocus in waves at the
pupil edge, astigmatism), an in-focus content patch (any rotation, a zoom, a contrast curve), a smooth
illumination field, out-of-focus haze from other layers, and camera noise (photons, background, read noise,
offset). Widefield fluorescence convolves the content with the PSF; brightfield propagates a thin
phase/absorption object through the same pupil (:func:`latent_focus.optics.parametric.brightfield_parametric`).
The noisy plane is then resampled to the canonical sampling (:mod:`.sampling`) and a centred patch is kept,
exactly as the estimator sees real planes.

Widefield targets are the canonical parameters ``(|W|, s A0, s A45)`` in waves, ``s`` the sign of the defocus:
the PSF cannot tell ``(W, A0, A45)`` from ``(-W, -A0, -A45)``. Brightfield targets keep the sign: the contrast of
a phase object inverts through focus, so the sign is visible.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ...optics import add_camera_noise, transmission_from_image
from ...optics.parametric import Optics, brightfield_parametric, canonical, parametric_psfs
from .sampling import FC0, PATCH, ZOOM_RANGE, conditioning, fit_patch, resample

MODALITIES = ("widefield", "brightfield")


@dataclass(frozen=True)
class SimulationRecipe:
    """The ranges samples are drawn from (recorded in the model card)."""

    modality: str = "widefield"
    max_waves: float = 10.0  # largest defocus, waves at the pupil edge
    max_astig: float = 0.8  # largest astigmatism, waves
    photons: tuple[float, float] = (30.0, 5000.0)  # brightest in-focus pixel (widefield) or clear background
    read_noise_e: tuple[float, float] = (0.5, 4.0)
    illumination: float = 0.4  # largest relative change of the illumination over a patch
    haze: float = 0.4  # fraction of widefield samples with out-of-focus light of other layers added
    content_zoom: tuple[float, float] = (0.6, 1.6)
    wavelength_um: tuple[float, float] = (0.4, 0.7)
    pixel_um: tuple[float, float] = (0.06, 0.7)  # camera pixel in the sample plane, drawn log-uniformly
    small_field: float = 0.3  # fraction of samples cut from a field of 96-256 pixels, as a small crop is
    beads: float = 0.15  # fraction of widefield samples whose object is a sparse field of beads, not content

    def as_dict(self) -> dict:
        return asdict(self)


def _objective(rng: np.random.Generator, modality: str) -> tuple[float, float]:
    """(NA, immersion index) of a random objective."""
    if modality == "brightfield":
        return float(rng.uniform(0.3, 0.95)), 1.0
    kind = rng.random()
    if kind < 0.4:
        return float(rng.uniform(0.3, 0.95)), 1.0
    if kind < 0.7:
        return float(rng.uniform(0.8, 1.25)), 1.33
    return float(rng.uniform(1.2, 1.45)), 1.515


def draw_optics(rng: np.random.Generator, recipe: SimulationRecipe) -> Optics:
    """Objective, wavelength and camera pixel from the recipe's ranges, redrawn until the zoom lies in
    :data:`ZOOM_RANGE` (a 0.06 um pixel behind a 10x/0.3 would need thousands of pixels per patch)."""
    lo, hi = ZOOM_RANGE
    while True:
        na, n = _objective(rng, recipe.modality)
        wl = float(rng.uniform(*recipe.wavelength_um))
        pixel = float(np.exp(rng.uniform(*np.log(recipe.pixel_um))))
        optics = Optics(na, wl, n, pixel)
        if lo <= optics.cutoff_px / FC0 <= hi:
            return optics


def draw_params(rng: np.random.Generator, recipe: SimulationRecipe) -> np.ndarray:
    """(W, A0, A45) in waves: defocus dense near focus, astigmatism small half of the time."""
    w = recipe.max_waves * (rng.uniform(0, 0.03) if rng.random() < 0.1 else rng.random() ** 1.5)
    w *= 1 if rng.random() < 0.5 else -1
    if rng.random() < 0.5:
        a = rng.normal(0.0, 0.08 if recipe.max_astig > 0 else 0.0, size=2)
    else:
        r, t = recipe.max_astig * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        a = np.array([r * math.cos(t), r * math.sin(t)])
    return np.array([w, a[0], a[1]])


def _reflect(i: np.ndarray, n: int) -> np.ndarray:
    period = 2 * n
    i = np.mod(i, period)
    return np.where(i >= n, period - 1 - i, i)


def affine_crop(image: np.ndarray, size: int, rng: np.random.Generator, zoom: tuple[float, float]) -> np.ndarray:
    """A ``size`` x ``size`` crop at a random place, angle and zoom (bilinear, mirrored at the borders)."""
    h, w = image.shape
    angle = rng.uniform(0, 2 * math.pi)
    scale = 1.0 / rng.uniform(*zoom)  # content pixels per output pixel
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    g = (np.arange(size) - (size - 1) / 2) * scale
    yy, xx = np.meshgrid(g, g, indexing="ij")
    c, s = math.cos(angle), math.sin(angle)
    y = cy + c * yy - s * xx
    x = cx + s * yy + c * xx
    if rng.random() < 0.5:
        x = 2 * cx - x  # mirror image
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    fy, fx = y - y0, x - x0
    out = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            out = out + wy * wx * image[_reflect(y0 + dy, h), _reflect(x0 + dx, w)]
    return np.asarray(out, dtype=np.float64)


def bead_field(size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` object of a few fluorescent beads: discs of 0.5-8 pixels radius, brightest at 1."""
    g = np.arange(size) - (size - 1) / 2
    yy, xx = np.meshgrid(g, g, indexing="ij")
    out = np.zeros((size, size))
    n = 1 + rng.poisson(rng.uniform(0.5, 6.0) * (size / 96) ** 2)
    radius = float(np.exp(rng.uniform(np.log(0.5), np.log(8.0))))
    spread = (size / 2 - radius) * (0.15 if rng.random() < 0.3 else 1.0)  # sometimes one bead near the centre
    for _ in range(min(n, 200)):
        cy, cx = rng.uniform(-spread, spread, size=2)
        r = radius * rng.uniform(0.8, 1.25)
        d = np.hypot(yy - cy, xx - cx)
        out += rng.uniform(0.3, 1.0) * np.clip(r + 0.5 - d, 0.0, 1.0) / max(r, 0.5) ** 2
    return out / max(float(out.max()), 1e-12)


def _illumination(n: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    g = np.linspace(-1, 1, n)
    yy, xx = np.meshgrid(g, g, indexing="ij")
    coef = rng.uniform(-1, 1, size=5)
    field = coef[0] * yy + coef[1] * xx + 0.5 * (coef[2] * yy * yy + coef[3] * xx * xx + coef[4] * yy * xx)
    field /= max(float(np.abs(field).max()), 1e-9)
    return 1 + amplitude * rng.random() * field


def _contrast(content: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = content - np.percentile(content, rng.uniform(0, 5))
    x = np.clip(x, 0, None)
    x = x / max(float(np.percentile(x, 99.9)), 1e-9)
    return x ** rng.uniform(0.7, 1.4)


def simulate_sample(contents: list[np.ndarray], rng: np.random.Generator, recipe: SimulationRecipe):
    """One training sample.

    Returns
    -------
    patch : ndarray, float32, shape (PATCH, PATCH)
        The canonical patch (not yet normalised).
    cond : ndarray, float32, shape (2,)
    target : ndarray, float32, shape (3,)
        Canonical ``(|W|, s A0, s A45)``, waves.
    meta : dict
        The draw: optics, defocus in um, photons.
    """
    optics = draw_optics(rng, recipe)
    params = draw_params(rng, recipe)
    z_um = float(optics.defocus_um(params[0]))
    zoom = optics.cutoff_px / FC0
    n_nat = int(math.ceil(PATCH / zoom)) + 4
    content = contents[int(rng.integers(len(contents)))]
    photons = float(np.exp(rng.uniform(*np.log(recipe.photons))))
    read = float(rng.uniform(*recipe.read_noise_e))
    offset = float(rng.uniform(0, 300))
    if recipe.modality == "brightfield":
        margin = min(optics.support_px(z_um, abs(params[1]) + abs(params[2])) // 2, 2 * n_nat)
        obj = _contrast(affine_crop(content, n_nat + 2 * margin, rng, recipe.content_zoom), rng)
        t = transmission_from_image(obj, phase_rad=float(rng.uniform(0.2, 2.0)),
                                    absorption=float(rng.uniform(0.0, 0.2)))
        clean = brightfield_parametric(t, z_um, params[1], params[2], optics,
                                       na_condenser=float(rng.uniform(0.1, 0.9)) * optics.na)
        clean = clean[margin:margin + n_nat, margin:margin + n_nat]
        clean = clean * _illumination(n_nat, rng, recipe.illumination)
        background = 0.0
    else:
        k = min(optics.support_px(z_um, abs(params[1]) + abs(params[2])), 2 * n_nat + 1)
        psf = parametric_psfs(np.array([z_um, params[1], params[2]]), optics, k)
        m = k // 2
        if rng.random() < recipe.beads:
            obj = bead_field(n_nat + 2 * m, rng)
        else:
            obj = _contrast(affine_crop(content, n_nat + 2 * m, rng, recipe.content_zoom), rng)
        if rng.random() < recipe.haze:  # out-of-focus light from other layers of a thick sample
            other = _contrast(affine_crop(contents[int(rng.integers(len(contents)))], obj.shape[0], rng,
                                          recipe.content_zoom), rng)
            obj = obj + rng.uniform(0.1, 0.6) * _gaussian_blur(other, rng.uniform(4, 20))
        obj = obj * _illumination(obj.shape[0], rng, recipe.illumination)
        clean = _convolve_valid(obj, psf)
        background = float(rng.uniform(0, 0.3)) * photons
    adu = add_camera_noise(np.clip(clean, 0, None) * photons, gain=1.0, read_noise_e=read, offset=offset,
                           bit_depth=None, rng=rng, background_photons=background)
    canon = resample(adu, zoom)
    if rng.random() < recipe.small_field:  # a small field, mirrored out to a patch as at inference
        side = int(round(rng.uniform(96, 256) * zoom))
        if side < PATCH:
            c0 = (canon.shape[0] - side) // 2
            canon, _ = fit_patch(canon[c0:c0 + side, c0:c0 + side])
    c0 = (canon.shape[0] - PATCH) // 2
    patch = canon[c0:c0 + PATCH, c0:c0 + PATCH]
    target = (params if recipe.modality == "brightfield" else canonical(params)).astype(np.float32)
    meta = {"na": optics.na, "wavelength_um": optics.wavelength_um, "n_immersion": optics.n_immersion,
            "pixel_size_um": optics.pixel_size_um, "defocus_um": z_um, "photons": photons}
    return patch.astype(np.float32), conditioning(zoom, optics), target, meta


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.rfftfreq(image.shape[1])[None, :]
    g = np.exp(-2 * np.pi ** 2 * sigma ** 2 * (fy ** 2 + fx ** 2))
    return np.fft.irfft2(np.fft.rfft2(image) * g, s=image.shape)


def _convolve_valid(obj: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """``obj`` convolved with ``psf``, only where the kernel lies inside ``obj`` (circular FFT, cropped)."""
    h, w = obj.shape
    k = psf.shape[0]
    buf = np.zeros((h, w))
    buf[:k, :k] = psf
    buf = np.roll(buf, (-(k // 2), -(k // 2)), axis=(0, 1))
    out = np.fft.irfft2(np.fft.rfft2(obj) * np.fft.rfft2(buf), s=(h, w))
    m = k // 2
    return out[m:h - m, m:w - m]
