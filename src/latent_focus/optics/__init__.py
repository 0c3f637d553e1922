"""Optics of defocus: PSFs, FFT convolution, brightfield propagation and camera noise (plain numpy).

Lengths are in micrometres, images have axes (y, x) and stacks (z, y, x). Defocus ``z`` is the focal
shift of the objective in object space; ``z = 0`` is in focus.
"""

from .brightfield import brightfield_defocus, transmission_from_image
from .camera import add_camera_noise
from .checks import check_image, check_optics, check_size, finite, positive
from .fft import crop_center, fast_len, fft_convolve, kernel_otf, pad
from .psf import born_wolf_psf, gibson_lanni_psf, psf_from_bead_stack, psf_support_px

__all__ = ["add_camera_noise", "born_wolf_psf", "brightfield_defocus", "check_image", "check_optics", "check_size",
           "crop_center", "fast_len", "fft_convolve", "finite", "gibson_lanni_psf", "kernel_otf", "pad",
           "positive", "psf_from_bead_stack", "psf_support_px", "transmission_from_image"]
