"""Time psf-rl's spatially-variant TV Richardson-Lucy on a 1024 x 1024 plane (30 iterations), and its other steps.

    python benchmarks/psf_rl_speed.py [--size 1024] [--iterations 30] [--repeats 3] [--device cpu|cuda|auto]

Cases: one PSF for the whole plane; a tilted sample (defocus growing linearly from 0.5 to 2.5 um across the
plane, so every 128-pixel tile has its own PSF; NA 1.2 water, 460 nm, 0.256 um pixels) without and with TV;
the PSF estimator's maps of the plane; the whole ``restore`` of the plane. Prints a table with the median of
the repeats, the rank of the PSF basis, and the load of the machine while it ran (other processes slow a shared
CPU down).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from latent_focus.device import describe, select_device
from latent_focus.io import Stack
from latent_focus.methods import load_method, run
from latent_focus.methods.psf_rl import PsfRLParams
from latent_focus.methods.psf_rl.deconvolve import TiledBlur, richardson_lucy_sv, run_to_end
from latent_focus.optics import fft_convolve
from latent_focus.optics.parametric import Optics, parametric_psfs
from latent_focus.tiling import plan_tiles

OPTICS = Optics(1.2, 0.46, 1.33, 0.256)


def plane(size: int, rng) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    img = np.zeros((size, size))
    for _ in range(size // 4):
        cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(2, 8)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    blurred = fft_convolve(1000 * img / img.max(), parametric_psfs(np.array([1.5, 0, 0]), OPTICS, 41))
    return rng.poisson(np.clip(blurred, 0, None) + 100).astype(np.float32)


def timed(fn, repeats: int, device) -> float:
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    device = select_device(args.device)
    rng = np.random.default_rng(0)
    img = plane(args.size, rng)
    n = args.size
    boxes = plan_tiles(n, n, 128, 32)
    centres = np.array([(x0 + x1) / 2 for _, _, x0, x1 in boxes])
    zs = 0.5 + 2.0 * centres / n
    kernels = parametric_psfs(np.stack([zs, 0 * zs, 0 * zs], 1), OPTICS, 45)
    one = parametric_psfs(np.array([1.5, 0, 0]), OPTICS, 45)[None]
    rank = TiledBlur(kernels, boxes, (n, n), 32, (n, n), (0, 0), torch.device("cpu")).rank
    load0 = os.getloadavg()[0]
    rows = [
        ("one PSF", timed(lambda: run_to_end(richardson_lucy_sv(img, one, [(0, n, 0, n)], 0, args.iterations,
                                                                 device=device)), args.repeats, device), "-"),
        (f"{len(boxes)} tiles, tilted sample", timed(lambda: run_to_end(richardson_lucy_sv(
            img, kernels, boxes, 32, args.iterations, device=device)), args.repeats, device), rank),
        (f"{len(boxes)} tiles, tilted sample, TV 0.002", timed(lambda: run_to_end(richardson_lucy_sv(
            img, kernels, boxes, 32, args.iterations, tv=0.002, device=device)), args.repeats, device), rank),
    ]
    method = load_method("psf-rl", None, args.device)
    rows.append(("estimator maps (CNN on 96-px patches)",
                 timed(lambda: method.blur_maps(img, OPTICS), args.repeats, device), "-"))
    stack = Stack(img[None], pixel_size_um=OPTICS.pixel_size_um)
    params = PsfRLParams(optics=(OPTICS.na, OPTICS.wavelength_um, OPTICS.n_immersion), iterations=args.iterations)
    rows.append((f"restore, {args.iterations} iterations (maps + plan + RL)",
                 timed(lambda: run(method.restore(stack, 0, params)), args.repeats, device), "-"))
    load1 = os.getloadavg()[0]
    print(f"psf-rl speed, {n} x {n} plane, {args.iterations} iterations, {describe(device)}, torch "
          f"{torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; load average "
          f"{load0:.1f} -> {load1:.1f}\n")
    print("| case | median time | PSF basis rank |\n| --- | --- | --- |")
    for name, t, r in rows:
        print(f"| {name} | {t:.2f} s | {r} |")


if __name__ == "__main__":
    main()
