"""Scores of a blur-code model on z-stacks with a known in-focus plane: the thesis' table, one stack at a time.

* reconstruction: ``D(E(x))`` against ``x`` for every plane;
* deblurring: each plane decoded with the in-focus code as the method does it (:func:`codes.deblur`: a plane
  coded at or below the in-focus code is kept), against the real in-focus plane (beside the plane as it is,
  "identity"); in both decodings (``plain``: ``D(c, b_focus)``; ``residual``: ``x + D(c, b_focus) - D(c, b)``);
* response: how much the decoder answers the code: the PSNR against the in-focus plane of ``D(c, b_focus)``
  minus that of ``D(c, b)``, per unit of code moved (``psnr_per_code``, dB; 0 when the decoder ignores the code);
* linearity: the planes' blur codes against their distance from focus (R² of a straight line, and the
  Spearman rank correlation: 1 when the code grows with the distance at every step);
* disentanglement: the ML-VAE score (:func:`latent_focus.metrics.mlvae_score`) on crops of the stacks,
  one identity per (stack, crop place), trained on the even planes and scored on the odd ones.

Intensities are normalised per stack (the model card's percentiles) before PSNR and SSIM, as in
:mod:`latent_focus.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...engine import LatentFocus
from ...io import Stack, check_plane_index, plane_positions
from ...metrics import MLVAEScore, mlvae_score, psnr, r_squared, ssim
from ...models.disentangled import split_latent
from .codes import BlurAxis, deblur, mean_code, plane_codes
from .losses import flat

SCORE_CROP = 64


@dataclass
class StackScores:
    """One stack's scores; ``planes`` holds one row per plane scored."""

    source: str
    focus: int
    planes: list[dict] = field(default_factory=list)
    r2: float = float("nan")
    spearman: float = float("nan")

    def median(self, key: str) -> float:
        vals = [r[key] for r in self.planes if key in r and np.isfinite(r[key])]
        return float(np.median(vals)) if vals else float("nan")


def spearman(x, y) -> float:
    """Spearman rank correlation (ties get their mean rank)."""
    def ranks(v):
        v = np.asarray(v, dtype=np.float64)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=np.float64)
        for value in np.unique(v):
            same = v == value
            r[same] = r[same].mean()
        return r
    return float(np.corrcoef(ranks(x), ranks(y))[0, 1]) if len(x) > 2 else float("nan")


def score_stack(engine: LatentFocus, stack: Stack, focus: int, planes=None, code_planes=None) -> StackScores:
    """Reconstruction, deblurring and linearity of one stack (``planes`` to deblur: default every plane but
    the focus; ``code_planes`` whose codes enter the linearity: default every plane)."""
    axis = BlurAxis.from_card(engine.card)
    focus = check_plane_index(focus, stack.n_planes)
    norm = engine.normalizer(stack.data)
    x = norm.normalize(stack.data)
    dist = np.abs(plane_positions(stack.n_planes, stack.z_um) - plane_positions(stack.n_planes, stack.z_um)[focus])
    planes = [p for p in range(stack.n_planes) if p != focus] if planes is None else list(planes)
    code_planes = list(range(stack.n_planes)) if code_planes is None else list(code_planes)
    codes = {p: axis.value(c) for p, c in zip(code_planes, plane_codes(engine, stack.data[code_planes], norm))}
    out = StackScores(stack.source, focus)
    target = x[focus]
    for p in sorted(set(planes) | {focus}):
        enc = engine.encode(stack.data[p], norm)
        rec = engine.decode(enc)
        row = {"plane": p, "distance": float(dist[p]), "code": codes.get(p, float("nan")),
               "rec_psnr": psnr(x[p], norm.normalize(rec)), "rec_ssim": ssim(x[p], norm.normalize(rec))}
        if p != focus and p in planes:
            decoded, moved = deblur(engine, axis, enc, stack.data[p], False)
            plain = norm.normalize(decoded)
            residual = x[p] + plain - norm.normalize(rec) if moved else x[p]
            moved_by = abs(axis.value(mean_code(enc)) - axis.focus_value)
            if moved and moved_by > 1e-9:
                row["psnr_per_code"] = (psnr(target, plain) - psnr(target, norm.normalize(rec))) / moved_by
            row.update(moved=moved, identity_psnr=psnr(target, x[p]), identity_ssim=ssim(target, x[p]),
                       plain_psnr=psnr(target, plain), plain_ssim=ssim(target, plain),
                       residual_psnr=psnr(target, residual), residual_ssim=ssim(target, residual))
        out.planes.append(row)
    ordered = sorted(codes)
    if len(ordered) >= 3:
        out.r2 = r_squared(dist[ordered], [codes[p] for p in ordered])
        out.spearman = spearman(dist[ordered], [codes[p] for p in ordered])
    return out


def identity_crops(stacks: list[Stack], planes: list[list[int]], crop: int = SCORE_CROP, per_side: int = 2,
                   percentiles=(0.1, 99.9)):
    """Crops for the ML-VAE score: up to ``per_side`` x ``per_side`` places per stack that do not overlap (each
    an identity), at each of the listed planes. Returns (crops (n, 1, crop, crop) float32, identity labels,
    plane indices)."""
    from ...io import Normalizer

    crops, labels, plane_ids = [], [], []
    identity = -1
    for stack, chosen in zip(stacks, planes):
        data = Normalizer.from_data(stack.data, percentiles).normalize(stack.data)
        h, w = data.shape[1:]
        if min(h, w) < crop:
            continue
        ys = np.linspace(0, h - crop, max(1, min(per_side, h // crop))).round().astype(int)
        xs = np.linspace(0, w - crop, max(1, min(per_side, w // crop))).round().astype(int)
        for y, x in ((y, x) for y in ys for x in xs):
            identity += 1
            for p in chosen:
                crops.append(data[p, y:y + crop, x:x + crop])
                labels.append(identity)
                plane_ids.append(p)
    return np.asarray(crops, dtype=np.float32)[:, None], np.asarray(labels), np.asarray(plane_ids)


@torch.no_grad()
def codes_of_crops(engine: LatentFocus, crops: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(identity codes flattened, blur codes) of (n, 1, s, s) normalised crops, the model's means."""
    identity, blur = [], []
    model = engine.model
    for i in range(0, len(crops), batch):
        x = torch.from_numpy(crops[i:i + batch]).to(engine.device)
        with engine.lock:
            ident, code = split_latent(model.encode(x))
        identity.append(flat(ident).float().cpu().numpy())
        blur.append(code.float().cpu().numpy())
    return np.concatenate(identity), np.concatenate(blur)


def model_mlvae_score(engine: LatentFocus, stacks: list[Stack], planes: list[list[int]], seed: int = 0,
                      epochs: int = 300) -> MLVAEScore:
    """The ML-VAE score of ``engine``'s model on crops of ``stacks`` (see :func:`identity_crops`): classifiers
    trained on the crops of even-numbered planes, scored on the odd ones."""
    crops, labels, plane_ids = identity_crops(stacks, planes, percentiles=engine.card.percentiles)
    identity, blur = codes_of_crops(engine, crops)
    return mlvae_score(identity, blur, labels, plane_ids % 2 == 0, epochs=epochs, seed=seed)
