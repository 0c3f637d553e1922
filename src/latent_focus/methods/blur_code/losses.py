"""The losses of the identity / blur-code model (Ritsema 2023, Eq. 4.5-4.8) and of the ML-VAE baseline (Eq. 4.4).

A batch is a :class:`~latent_focus.methods.blur_code.sampling.Batch`: ``N`` fields, each seen at two
blur levels (planes ``a`` and ``b`` of one side of focus, so a field's two planes share their identity),
and grouped in couples ``(0, 1), (2, 3), ...`` whose ``a`` planes share their blur (and whose ``b``
planes too where ``same_blur_b`` says so). Every loss uses those pairs:

* reconstruction ``gamma(D(E(x)), x)`` with ``gamma = L1 + w_ssim * (1 - SSIM)``. The thesis used a VGG-16
  perceptual loss; its ImageNet weights cannot be fetched at run time nor shipped, so L1 plus SSIM it is;
* contrastive (Eq. 4.7): codes of the shared factor are pulled together (``delta``), codes of the factor
  that differs are pushed apart up to the margin ``m`` (``max(m - delta, 0)``). A 1-D blur code is pushed
  apart in the known order, the plane further from focus up: ``max(m - (b_b - b_a) / L, 0)`` (equal to
  Eq. 4.7 once the codes are in order), so the code grows with blur; the ``b`` plane of a field's couple
  partner is pushed above its ``a`` plane too, which in a focus couple puts every defocused plane above
  the in-focus planes of other stacks;
* consistency (Eq. 4.6): decode one code swapped for another's, encode again: the code that was kept
  must come back unchanged (compared with the kept code held fixed);
* cross-reconstruction (Eq. 4.8): a field's identity code with the blur code of its other plane must
  decode to that other plane; with the blur code of a couple partner at the same blur, to itself.

The decoder reads the blur codes without passing gradients back to them: reconstruction would teach the
blur code whatever helps it (content, brightness); the code learns blur from the contrastive and
consistency terms, and the decoder and the identity code learn to use it.

``delta`` is the Euclidean distance normalised by the codes' length: ``||u - v|| / L`` with ``L`` the RMS
length of that code about its mean over the batch (:func:`code_length`). One margin then serves the large
identity code and the 1-D blur code alike, and no code can meet the losses by shrinking, growing or
shifting: normalising by each pair's own norms instead would leave a 1-D code only its sign, and a raw
distance lets a code that starts out nearly the same for every plane collapse to one value, which pulls
satisfy and pushes of random sign never undo.
The total is Eq. 4.5, ``rec + beta * (w_cons * cons + w_cont * cont + w_cross * cross)``, with ``beta``
rising from 0 to 1 over the first training steps (:func:`delay_weight`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ...models.disentangled import group_evidence, join_latent, split_latent


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eq. 4.5's terms, the SSIM share of the reconstruction loss, the margin and the ML-VAE's KL."""

    ssim: float = 0.2
    contrastive: float = 1.0
    consistency: float = 1.0
    cross: float = 1.0
    margin: float = 0.6
    kl: float = 0.01


def flat(code) -> torch.Tensor:
    """(B, n): a code (a tensor, or a tuple of multi-scale maps) flattened per sample."""
    if isinstance(code, (tuple, list)):
        return torch.cat([c.flatten(1) for c in code], dim=1)
    return code.flatten(1)


def code_length(codes) -> torch.Tensor:
    """``L``: RMS length of a batch of codes about their mean (a scalar, at least 1e-6)."""
    f = flat(codes)
    return (f - f.mean(dim=0)).pow(2).sum(dim=1).mean().add(1e-12).sqrt().clamp_min(1e-6)


def distance(u, v, length) -> torch.Tensor:
    """``delta``: per-sample Euclidean distance divided by ``length`` (:func:`code_length`); shape (B,)."""
    return (flat(u) - flat(v)).pow(2).sum(dim=1).add(1e-12).sqrt() / length


def contrastive_term(u, v, same: bool, margin: float, length) -> torch.Tensor:
    """Eq. 4.7 per sample: ``delta`` for codes of a shared factor, ``max(m - delta, 0)`` for a differing one."""
    d = distance(u, v, length)
    return d if same else F.relu(margin - d)


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None, dtype=None) -> torch.Tensor:
    g = torch.exp(-0.5 * ((torch.arange(size, device=device, dtype=dtype) - size // 2) / sigma) ** 2)
    g = g / g.sum()
    return g


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-sample mean SSIM of (B, 1, H, W) batches: Gaussian window 11 (sigma 1.5), K1 0.01, K2 0.03, valid area."""
    g = _gaussian_window(device=x.device, dtype=x.dtype)
    gy, gx = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def blur(t):
        return F.conv2d(F.conv2d(t, gy), gx)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(dim=1)


def reconstruction(pred: torch.Tensor, target: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """``gamma``: L1 plus ``ssim_weight * (1 - SSIM)``, averaged over the batch."""
    loss = (pred - target).abs().mean()
    if ssim_weight > 0:
        loss = loss + ssim_weight * (1 - ssim(pred, target)).mean()
    return loss


def delay_weight(step: int, delay: int) -> float:
    """``beta`` of Eq. 4.5: ``1 - exp(-5 step / delay)``, about 0.99 after ``delay`` steps (1 when 0)."""
    return 1.0 if delay <= 0 else 1.0 - math.exp(-5.0 * step / delay)


def _take(code, index):
    if isinstance(code, (tuple, list)):
        return tuple(c[index] for c in code)
    return code[index]


def _cat(codes):
    if isinstance(codes[0], (tuple, list)):
        return tuple(torch.cat(parts) for parts in zip(*codes))
    return torch.cat(codes)


def blur_contrastive(ba: torch.Tensor, bb: torch.Tensor, partner: torch.Tensor, same_b: torch.Tensor,
                     margin: float, length) -> torch.Tensor:
    """The blur half of Eq. 4.7 per pair: pulls between couple partners' ``a`` codes (and ``b`` codes where they
    share their blur); pushes of each field's ``b`` code, and its partner's, above its ``a`` code (a 1-D code
    in that order, see the module docstring). Every ``b`` plane is further from focus than its couple's ``a``
    planes, so in a focus couple every defocused plane is pushed above both in-focus planes."""
    keep = same_b.nonzero().flatten()
    pulls = [contrastive_term(ba, ba[partner], True, margin, length),
             contrastive_term(bb[keep], bb[partner][keep], True, margin, length)]
    if ba.shape[1] == 1:
        pushes = [F.relu(margin - (bb - ba)[:, 0] / length), F.relu(margin - (bb[partner] - ba)[:, 0] / length)]
    else:
        pushes = [contrastive_term(ba, bb, False, margin, length)]
    return torch.cat(pulls + pushes)


def disentangled_losses(model, batch, weights: LossWeights, beta: float = 1.0,
                        blur_batch=None) -> dict[str, torch.Tensor]:
    """Eq. 4.5's terms for one batch; ``"total"`` is the weighted sum (see the module docstring).

    All decodes of a step (reconstructions and cross-reconstructions) run as one batch, and so do the
    re-encodings of the consistency loss. ``blur_batch``, another batch, adds pairs to the blur half of the
    contrastive loss only: its planes go through the blur encoder alone, which costs little, so the blur code
    sees many more pairs per step than the decoder does.
    """
    xa, xb = batch.x[0], batch.x[1]
    n = xa.shape[0]
    partner, same_b = batch.partner, batch.same_blur_b
    keep = same_b.nonzero().flatten()
    identity, code = split_latent(model.encode(torch.cat([xa, xb])))
    ca, cb = _take(identity, slice(0, n)), _take(identity, slice(n, 2 * n))
    ba, bb = code[:n], code[n:]

    # decoded together: reconstructions, then identity of a with the blur of b (must give b), of b with the
    # blur of a (a), of a with its partner's a blur (a), of b with its partner's b blur where they share it (b);
    # the blur codes pass no gradient back from the decoder (see the module docstring)
    dcode = code.detach()
    da, db = dcode[:n], dcode[n:]
    pairs = [(identity, dcode, torch.cat([xa, xb])), (ca, db, xb), (cb, da, xa), (ca, da[partner], xa),
             (_take(cb, keep), db[partner][keep], xb[keep])]
    sizes = [len(t) for _, _, t in pairs]
    decoded = torch.split(model.decode(join_latent(_cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs]))),
                          sizes)
    gamma = [reconstruction(d, t, weights.ssim) for d, (_, _, t), k in zip(decoded, pairs, sizes) if k]
    terms = {"rec": gamma[0], "cross": torch.stack(gamma[1:]).mean()}

    # contrastive (Eq. 4.7): identity shared within a field, blur shared within a couple's a (and b) planes
    m, li = weights.margin, code_length(identity)
    identity_terms = torch.cat([contrastive_term(ca, cb, True, m, li),
                                contrastive_term(ca, _take(ca, partner), False, m, li),
                                contrastive_term(cb, _take(cb, partner), False, m, li)])
    groups = [(ba, bb, partner, same_b)]
    if blur_batch is not None:
        k = blur_batch.x.shape[1]
        extra = model.encode_blur(torch.cat([blur_batch.x[0], blur_batch.x[1]]))
        groups.append((extra[:k], extra[k:], blur_batch.partner, blur_batch.same_blur_b))
    lb = code_length(torch.cat([torch.cat([g[0], g[1]]) for g in groups]))
    blur_terms = torch.cat([blur_contrastive(*g, m, lb) for g in groups])
    terms["cont"] = identity_terms.mean() + blur_terms.mean()

    # consistency (Eq. 4.6): the kept code survives decoding and encoding again
    b_from_a, a_swapped = decoded[1], decoded[3]
    again_identity, again_code = split_latent(model.encode(torch.cat([b_from_a, a_swapped])))
    # The codes it compares with and its unit of length are held fixed (no gradient): a loss made only of
    # pulls would otherwise be met by shrinking every code together, or by spreading them out.
    terms["cons"] = (distance(_take(again_identity, slice(0, n)), tuple(c.detach() for c in ca), li.detach()).mean()
                     + distance(again_code[n:], ba[partner].detach(), lb.detach()).mean())

    terms["total"] = terms["rec"] + beta * (weights.consistency * terms["cons"] + weights.contrastive * terms["cont"]
                                            + weights.cross * terms["cross"])
    return terms


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per element, averaged over all elements."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def mlvae_losses(model, batch, weights: LossWeights, beta: float = 1.0) -> dict[str, torch.Tensor]:
    """ML-VAE objective (Eq. 4.1-4.4): each field's two planes form a group whose identity evidence is
    accumulated (:func:`group_evidence`); reconstruction of both planes from the group's identity sample and
    each plane's own blur sample, plus the KL of the blur codes and of the group identity codes (per element,
    weighted by ``weights.kl``). ``beta`` is not used (the ML-VAE has no delayed terms)."""
    xa, xb = batch.x[0], batch.x[1]
    n = xa.shape[0]
    x = torch.cat([xa, xb])
    groups = torch.arange(n, device=x.device).repeat(2)
    mus, logvars, b_mu, b_logvar = model.encode_stats(x)
    identity, kl_id = [], []
    for mu, lv in zip(mus, logvars):
        g_mu, g_lv = group_evidence(mu, lv, groups)
        sample = g_mu + torch.randn_like(g_mu) * torch.exp(0.5 * g_lv) if model.training else g_mu
        identity.append(sample[groups])
        kl_id.append(kl_standard_normal(g_mu, g_lv) * g_mu[0].numel())
    size = sum(mu[0].numel() for mu in mus)
    code = b_mu + torch.randn_like(b_mu) * torch.exp(0.5 * b_logvar) if model.training else b_mu
    terms = {"rec": reconstruction(model.decode(join_latent(tuple(identity), code)), x, weights.ssim),
             "kl_blur": kl_standard_normal(b_mu, b_logvar),
             "kl_identity": torch.stack(kl_id).sum() / size}
    terms["total"] = terms["rec"] + weights.kl * (terms["kl_blur"] + terms["kl_identity"])
    return terms
