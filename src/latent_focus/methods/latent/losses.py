"""The latent method's training losses: reconstruction, blur synthesis (Eq. 1, 3), the latent term (Eq. 4) and
the optional deblurring term (Eq. 2)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ...latent import deblur_t, map_parts, parts


def _flat(z) -> torch.Tensor:
    """(B, n) view of a latent, all parts concatenated per sample."""
    return torch.cat([p.flatten(1) for p in parts(z)], dim=1)


def _latent_distance(zb, zb_interp, za, zc, relative: bool) -> torch.Tensor:
    """Eq. 4's L1 between ``z_b`` and ``z_b'``; ``relative`` divides it, per sample and latent part, by the
    L1 between ``z_a`` and ``z_c``, so it cannot be lowered by shrinking the latent."""
    if not relative:
        return (_flat(zb) - _flat(zb_interp)).abs().mean()
    terms = []
    for b, bi, a, c in zip(parts(zb), parts(zb_interp), parts(za), parts(zc)):
        gap = (b - bi).abs().flatten(1).mean(1)
        span = (a - c).abs().flatten(1).mean(1)
        terms.append(gap / (span + 1e-6))
    return torch.stack(terms).mean()


def _mix(za, zc, alpha: torch.Tensor):
    """Eq. 1 with one alpha per sample: ``alpha`` has shape (B,)."""
    def mix(a, c):
        w = alpha.view(-1, *([1] * (a.ndim - 1))).to(a.dtype)
        return w * a + (1 - w) * c
    return map_parts(mix, za, zc)


def triplet_losses(model, batch: torch.Tensor, alpha: torch.Tensor, regularization: str,
                   loss: str = "l1", extrapolation: float = 0.0,
                   relative_latent: bool = False, outputs: dict | None = None) -> dict[str, torch.Tensor]:
    """Loss terms of Eq. 3-4 for a (3, B, 1, h, w) batch of a, b, c crops with per-sample ``alpha``.

    With ``extrapolation > 0`` a deblurring term is added with that weight: the sharpest plane ``a``
    reconstructed from the extrapolated latent ``z_b/alpha - (1-alpha)/alpha*z_c`` (Eq. 2).
    ``relative_latent`` makes Eq. 4 scale-free (see :func:`_latent_distance`). A dict passed as
    ``outputs`` receives the decoded interpolation under ``"interp"``, for every regularization.
    """
    rct = F.l1_loss if loss == "l1" else F.mse_loss
    xa, xb, xc = batch
    za, zc = model.encode(xa), model.encode(xc)
    terms = {"rec": 0.5 * (rct(model.decode(za), xa) + rct(model.decode(zc), xc))}
    zb = model.encode(xb) if (regularization == "direct" or extrapolation > 0) else None
    interpolates = regularization in ("indirect", "direct")
    if interpolates or outputs is not None:
        zb_interp = _mix(za, zc, alpha)
        interp = model.decode(zb_interp)
        if outputs is not None:
            outputs["interp"] = interp
    if interpolates:
        terms["interp"] = rct(interp, xb)
        if regularization == "direct":
            terms["latent"] = _latent_distance(zb, zb_interp, za, zc, relative_latent)
    if extrapolation > 0:
        terms["extrap"] = extrapolation * rct(model.decode(_mix(zb, zc, deblur_t(alpha))), xa)
    terms["total"] = sum(terms.values())
    return terms
