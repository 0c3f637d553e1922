"""Does the latent step point towards focus? Its correlation with the true change, pair by pair.

    python benchmarks/step_direction.py [MODEL] [--series hela ...] [--sim DIR [--kind brightfield]]
        [--every N] [--max-stacks N]

For each deblurring pair (B, C) the step Eq. 2 makes in the decoded plane, ``D(z_focus) - D(z_B)``, is
compared with the change the focus plane really has, ``x_focus - x_B``: their correlation is positive when
the model steps towards focus and negative when it steps away. Beside it, the coarse contrast (standard
deviation of the plane blurred by 8 px) of B, C, the focus plane and the decoded step, because in
brightfield what separates a defocused plane from the focus plane is mostly coarse halo contrast, not
sharpness; and the gain over identity of B with its deviations from its mean scaled by the best factor
in 0-1.2, picked with the focus plane (a bound, no rule). Real series come from ``evaluate_models.SERIES``
(default: the HeLa field); ``--sim`` takes held-out simulated stacks written by
``scripts/make_training_data.py`` (``--kind`` keeps one kind).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from evaluate_models import REPO, SERIES
from latent_focus.latent import extrapolate
from latent_focus.methods.latent.evaluation import StackPlanes
from latent_focus.metrics import psnr
from step_sweep import load_engine, load_series


def coarse_contrast(plane: np.ndarray, sigma: float = 8.0) -> float:
    """Standard deviation of ``plane`` blurred by a Gaussian of ``sigma`` pixels (periodic, by FFT)."""
    fy, fx = np.fft.fftfreq(plane.shape[0])[:, None], np.fft.fftfreq(plane.shape[1])[None, :]
    blurred = np.real(np.fft.ifft2(np.fft.fft2(plane) * np.exp(-2 * (np.pi * sigma) ** 2 * (fy ** 2 + fx ** 2))))
    return float(blurred.std())


def directions(engine, name: str, stack, focus: int, every: int = 1) -> list[dict]:
    """One row per ``every``-th pair: the step's correlation with ``x_focus - x_B`` and the coarse contrasts."""
    planes = StackPlanes(engine, stack, focus)
    rows = []
    for b, c, alpha in planes.deblur_cases()[::every]:
        recon = planes.decode(planes.z(b))
        step = planes.decode(extrapolate(planes.z(b), planes.z(c), alpha)) - recon
        truth = planes.x[focus] - planes.x[b]
        mean = planes.x[b].mean()
        scaled = max((psnr(planes.x[focus], mean + g * (planes.x[b] - mean)), g) for g in np.linspace(0, 1.2, 25))
        correlation = float(np.corrcoef(step.ravel(), truth.ravel())[0, 1])
        rows.append({"series": name, "B": b, "C": c, "correlation": correlation,
                     "scale": float(scaled[1]), "scale_gain": scaled[0] - planes.identity_psnr(b),
                     **{f"coarse_{k}": coarse_contrast(v) for k, v in (("B", planes.x[b]), ("C", planes.x[c]),
                                                                         ("focus", planes.x[focus]),
                                                                         ("stepped", recon + step))}})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="default")
    p.add_argument("--series", nargs="+", choices=[s.key for s in SERIES], default=["hela"])
    p.add_argument("--sim", type=Path, default=None, help="held-out simulated stacks instead of the real series")
    p.add_argument("--kind", default=None, help="with --sim: only stacks of this kind (file names starting so)")
    p.add_argument("--every", type=int, default=1, help="take every N-th pair")
    p.add_argument("--max-stacks", type=int, default=None)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    engine = load_engine(p, args.model, args.device)
    series = [s for s in load_series(p, args) if args.kind is None or s[0].startswith(args.kind)][:args.max_stacks]
    rows = [r for name, stack, focus in series for r in directions(engine, name, stack, focus, args.every)]
    print("| series | B | C | correlation of the step with x_focus - x_B | coarse contrast: B / C / focus / B stepped "
          "| best contrast scale of B: factor, gain |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['series']} | {r['B']} | {r['C']} | {r['correlation']:+.3f} | {r['coarse_B']:.4f} / "
              f"{r['coarse_C']:.4f} / {r['coarse_focus']:.4f} / {r['coarse_stepped']:.4f} | {r['scale']:.2f}, "
              f"{r['scale_gain']:+.2f} dB |")
    corr = np.array([r["correlation"] for r in rows])
    print(f"\n{len(rows)} pairs: median correlation {np.median(corr):+.3f}, positive in {np.mean(corr > 0):.0%}")


if __name__ == "__main__":
    main()
