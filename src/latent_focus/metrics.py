"""Image-quality and latent-geometry metrics, written from the paper's equations.

PSNR (Eq. 7), SSIM (Wang et al. 2004), the Linear Dependence Score LDS (Eq. 5) and the Average
Pairwise Distance APD (Eq. 6), plus the variance-of-Laplacian focus measure; for models with an identity
and a blur code, the ML-VAE score (Ritsema 2023, Eq. 4.10) and the R² of a straight-line fit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .latent import parts


def psnr(reference: np.ndarray, image: np.ndarray, data_range: float | None = None) -> float:
    """Eq. 7: ``20 log10(max(I) / RMSE(I, R))`` with ``I`` the reference; ``data_range`` replaces ``max(I)``."""
    ref = np.asarray(reference, dtype=np.float64)
    img = np.asarray(image, dtype=np.float64)
    if ref.shape != img.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {img.shape}")
    peak = float(ref.max()) if data_range is None else float(data_range)
    rmse = float(np.sqrt(np.mean((ref - img) ** 2)))
    if rmse == 0:
        return float("inf")
    return 20.0 * np.log10(peak / rmse)


def _gaussian_filter(img: np.ndarray, sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    """Separable Gaussian filter keeping only fully covered pixels ('valid' mode)."""
    r = int(truncate * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    h, w = img.shape
    rows = sum(k[i] * img[i:h - 2 * r + i] for i in range(2 * r + 1))
    return sum(k[i] * rows[:, i:w - 2 * r + i] for i in range(2 * r + 1))


def ssim(reference: np.ndarray, image: np.ndarray, data_range: float | None = None) -> float:
    """Mean structural similarity with an 11-tap Gaussian window (sigma 1.5), K1=0.01, K2=0.03.

    ``data_range`` defaults to the reference's max - min. Borders are excluded (valid filtering).
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(image, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    L = float(x.max() - x.min()) if data_range is None else float(data_range)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    mx, my = _gaussian_filter(x), _gaussian_filter(y)
    sxx = _gaussian_filter(x * x) - mx * mx
    syy = _gaussian_filter(y * y) - my * my
    sxy = _gaussian_filter(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def _as_vectors(latents) -> np.ndarray:
    rows = []
    for z in latents:
        rows.append(np.concatenate([np.asarray(_to_numpy(p), dtype=np.float64).ravel() for p in parts(z)]))
    return np.stack(rows)


def _to_numpy(x):
    return x.detach().float().cpu().numpy() if hasattr(x, "detach") else x


def lds(latents) -> float:
    """Eq. 5: mean cosine between successive difference vectors ``z_{n-1}-z_n`` and ``z_n-z_{n+1}``.

    ``latents`` are ordered by blur level (at least three). 1 means the latents lie on a line.
    """
    return _lds(_as_vectors(latents))


def _lds(z: np.ndarray) -> float:
    """:func:`lds` of latents already flattened to the rows of ``z``."""
    if len(z) < 3:
        raise ValueError("LDS needs latents of at least three blur levels")
    d = z[:-1] - z[1:]
    num = np.sum(d[:-1] * d[1:], axis=1)
    den = np.linalg.norm(d[:-1], axis=1) * np.linalg.norm(d[1:], axis=1)
    return float(np.mean(num / np.maximum(den, 1e-30)))


def apd(latents, positions=None) -> float:
    """Eq. 6: mean |d(z_n, z_n+1) - d(z'_n, z'_n+1)| / d(z_0, z_N-1).

    ``z'`` are the latents interpolated linearly between the end points ``z_0`` and ``z_N-1``: at equal
    steps as in the paper, or, given the planes' ``positions`` (their blur levels, e.g. distance from
    focus), at those positions, so that unequally spaced planes on a straight, evenly paced latent line
    score 0 too. Equally spaced positions give Eq. 6 itself. 0 is best.
    """
    return _apd(_as_vectors(latents), positions)


def _apd(z: np.ndarray, positions=None) -> float:
    """:func:`apd` of latents already flattened to the rows of ``z``."""
    if len(z) < 2:
        raise ValueError("APD needs latents of at least two blur levels")
    n = len(z)
    total = np.linalg.norm(z[-1] - z[0])
    if total == 0:
        return 0.0
    real = np.linalg.norm(z[1:] - z[:-1], axis=1)
    if positions is None:
        interp = np.full(n - 1, total / (n - 1))
    else:
        p = np.asarray(positions, dtype=np.float64)
        if p.shape != (n,) or p[-1] == p[0]:
            raise ValueError("APD needs one position per latent, the first and last ones different")
        interp = total * np.diff(p) / (p[-1] - p[0])
    return float(np.mean(np.abs(real - interp)) / total)


class Linearity(NamedTuple):
    """Latent geometry of the planes on one side of focus, ordered outward from it."""

    planes: list[int]
    lds: float
    apd: float  # Eq. 6, equal steps
    apd_spaced: float  # reference latents at the planes' defocus distances


def linearity_by_side(latent, positions, focus: int) -> dict[str, Linearity]:
    """LDS and APD on each side of focus: ``{"below"|"above": Linearity}``.

    ``latent(i)`` gives plane ``i``'s latent; each side's planes run outward from the focus plane
    (which both sides share), ordered by distance from it. Sides with fewer than three planes are left out.
    """
    rel = np.asarray(positions, dtype=float) - float(positions[focus])
    out = {}
    for side, sign in (("below", -1), ("above", 1)):
        planes = sorted((i for i in range(len(rel)) if sign * rel[i] > 0 or i == focus), key=lambda i: abs(rel[i]))
        if len(planes) >= 3:
            z = _as_vectors([latent(i) for i in planes])  # flattened once for all three scores
            out[side] = Linearity(planes, _lds(z), _apd(z), _apd(z, np.abs(rel[planes])))
    return out


def focus_measure(plane: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian, normalised by the squared mean (scale-free)."""
    p = np.asarray(plane, dtype=np.float64)
    lap = -4 * p[1:-1, 1:-1] + p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
    mean = abs(p.mean()) or 1.0
    return float(lap.var() / mean ** 2)


def noise_sigma(plane: np.ndarray) -> float:
    """Standard deviation of additive white noise in a plane (Immerkaer 1996, from a Laplacian-difference mask).

    Robust to image content at moderate noise; used to express differences between planes in noise units.
    """
    p = np.asarray(plane, dtype=np.float64)
    if p.ndim != 2 or min(p.shape) < 3:
        raise ValueError(f"noise_sigma needs a (y, x) plane of at least 3x3; got shape {p.shape}")
    m = (p[:-2, :-2] - 2 * p[:-2, 1:-1] + p[:-2, 2:] - 2 * p[1:-1, :-2] + 4 * p[1:-1, 1:-1] - 2 * p[1:-1, 2:]
         + p[2:, :-2] - 2 * p[2:, 1:-1] + p[2:, 2:])
    return float(np.sqrt(np.pi / 2) * np.abs(m).sum() / (6.0 * (p.shape[0] - 2) * (p.shape[1] - 2)))


#: the frequencies (cycles per pixel, (f_y, f_x)) of the stripe and grid texture a 2 x 2 pixel fold can leave:
#: columns or rows alternating every pixel or every two pixels, and the checkerboard
FOLD_FREQUENCIES = ((0.0, 0.5), (0.5, 0.0), (0.0, 0.25), (0.25, 0.0), (0.5, 0.5))


def stripe_excess(image: np.ndarray, reference: np.ndarray, frequencies=FOLD_FREQUENCIES) -> float:
    """How much more than ``reference`` the spectrum of ``image`` peaks at a stripe frequency.

    Each plane is windowed by a round Hann window (whose leakage favours no direction). For each of
    ``frequencies`` (cycles per pixel, ``(f_y, f_x)``; default :data:`FOLD_FREQUENCIES`) the mean power within
    0.015 of it is divided by the median power 0.03-0.08 away: a stripe texture, even one too faint to see
    without stretching the contrast, makes a peak there, while noise and blurred content do not. The result
    is the largest ratio of ``image``'s peak to ``reference``'s (the latter taken as at least 1): about 1
    or less for a plane without stripes of its own.
    """
    def peaks(plane: np.ndarray) -> np.ndarray:
        p = np.asarray(plane, dtype=np.float64)
        if p.ndim != 2 or min(p.shape) < 32:
            raise ValueError(f"stripe_excess needs (y, x) planes of at least 32 x 32; got shape {p.shape}")
        yy, xx = np.mgrid[:p.shape[0], :p.shape[1]]
        r = np.hypot((yy - (p.shape[0] - 1) / 2) / p.shape[0], (xx - (p.shape[1] - 1) / 2) / p.shape[1])
        window = np.where(r < 0.5, 0.5 + 0.5 * np.cos(2 * np.pi * r), 0.0)
        power = np.abs(np.fft.fft2((p - p.mean()) * window)) ** 2
        fy, fx = np.abs(np.fft.fftfreq(p.shape[0]))[:, None], np.abs(np.fft.fftfreq(p.shape[1]))[None, :]
        out = []
        for gy, gx in frequencies:
            distance = np.hypot(fy - gy, fx - gx)
            around = float(np.median(power[(distance > 0.03) & (distance <= 0.08)]))
            out.append(power[distance <= 0.015].mean() / max(around, 1e-300))
        return np.asarray(out)

    img, ref = np.asarray(image), np.asarray(reference)
    if img.shape != ref.shape:
        raise ValueError(f"shapes differ: {img.shape} vs {ref.shape}")
    return float(np.max(peaks(img) / np.maximum(peaks(ref), 1.0)))
def r_squared(x, y) -> float:
    """Coefficient of determination of the least-squares line ``y ~ a x + b`` (1: on a line; 0: no linear trend)."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size < 3:
        raise ValueError("r_squared needs two sequences of the same length, at least three values")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1] ** 2)


class MLVAEScore(NamedTuple):
    """Eq. 4.10: identity accuracy from the identity code minus identity accuracy from the blur code."""

    identity_accuracy: float
    blur_accuracy: float
    score: float
    chance: float  # 1 / number of identities
    samples: int  # held-out samples the accuracies are measured on


def mlvae_score(identity_codes, blur_codes, labels, train, epochs: int = 300, hidden: int = 128,
                max_features: int = 128, seed: int = 0) -> MLVAEScore:
    """The ML-VAE score (Ritsema 2023, Eq. 4.10; Bouchacourt et al. 2018) of a model's codes.

    Two classifiers predict each sample's identity, one from its identity code, one from its blur code;
    the score is the first's accuracy minus the second's (1: identity lives only in the identity code).

    Protocol: codes are flattened and standardised with the training samples' mean and spread; codes
    longer than ``max_features`` are projected on their ``max_features`` main axes (PCA of the training
    samples). Each classifier is a one-hidden-layer MLP (``hidden`` ReLU units, softmax over the
    identities) trained on the samples where ``train`` is true for ``epochs`` full-batch epochs of Adam
    (learning rate 0.01, weight decay 1e-4, seeded); the thesis trains for 300 epochs too, in mini-batches.
    Accuracies are measured on the other samples (e.g. other planes of the same fields), so every
    identity must appear on both sides.

    Parameters
    ----------
    identity_codes, blur_codes : array (n, ...)
    labels : int array (n,)
        Identity of each sample.
    train : bool array (n,)
        Samples the classifiers are fitted on; the rest are scored.
    """
    import torch

    labels = np.asarray(labels).ravel()
    train = np.asarray(train, dtype=bool).ravel()
    names, y = np.unique(labels, return_inverse=True)
    if train.shape != y.shape or train.all() or not train.any():
        raise ValueError("mlvae_score needs one train flag per sample and samples on both sides of the split")
    missing = set(y[~train]) - set(y[train])
    if missing:
        raise ValueError(f"identities {sorted(names[list(missing)])} have no training sample")

    def accuracy(codes) -> float:
        x = np.asarray(codes, dtype=np.float64).reshape(len(y), -1)
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        x = (x - mean) / np.where(std > 0, std, 1.0)
        if x.shape[1] > max_features:
            basis = np.linalg.svd(x[train], full_matrices=False)[2][:max_features]
            x = x @ basis.T
        gen = torch.Generator().manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(hidden, len(names)))
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.empty_like(p).uniform_(-1, 1, generator=gen) / np.sqrt(max(p.shape[-1], 1)))
        xt = torch.as_tensor(x, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.long)
        fit = torch.as_tensor(train)
        opt = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=1e-4)
        for _ in range(epochs):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[fit]), yt[fit]).backward()
            opt.step()
        with torch.no_grad():
            pred = net(xt[~fit]).argmax(dim=1)
        return float((pred == yt[~fit]).float().mean())

    acc_id, acc_blur = accuracy(identity_codes), accuracy(blur_codes)
    return MLVAEScore(acc_id, acc_blur, acc_id - acc_blur, 1.0 / len(names), int((~train).sum()))
