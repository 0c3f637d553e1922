import json

import numpy as np
import pytest
import torch

from latent_focus import InputError, LatentFocus
from latent_focus.methods.latent.losses import triplet_losses
from latent_focus.methods.latent.training import TrainConfig, train, triplets_for
from latent_focus.models import load_model, read_card, read_history
from latent_focus.models.modelfile import CHECKPOINT, WEIGHTS


def _cfg(**kw):
    base = dict(preset="tiny", steps=4, batch_size=2, crop=64, device="cpu", validate_every=2,
                checkpoint_every=2, val_fraction=0.0)
    return TrainConfig(**{**base, **kw})


def test_triplets_midpoint_and_sides():
    trips = triplets_for(7, None, focus=3, mode="midpoint")
    assert (3, 4, 5, 0.5) in trips and (1, 0, 2, 0.5) not in trips
    assert all(abs(t[3] - 0.5) < 1e-9 for t in trips)
    for a, b, c, _ in trips:  # never across focus
        assert (a - 3) * (c - 3) >= 0
    z = np.array([-24.65, -10.3, -0.65, 0.0, 9.75, 24.55])
    assert triplets_for(6, z, 3, "midpoint") == []
    general = triplets_for(6, z, 3, "auto")
    assert (3, 4, 5, pytest.approx(1 - 9.75 / 24.55)) in general


@pytest.mark.parametrize("reg, keys", [("baseline", {"rec"}), ("indirect", {"rec", "interp"}),
                                       ("direct", {"rec", "interp", "latent"})])
def test_regularization_terms(reg, keys):
    from latent_focus.models import build_model
    model = build_model("tiny")
    x = torch.rand(3, 2, 1, 32, 32)
    terms = triplet_losses(model, x, torch.full((2,), 0.5), reg)
    assert set(terms) == keys | {"total"}
    assert torch.isclose(terms["total"], sum(v for k, v in terms.items() if k != "total"))


def test_extrapolation_term_decodes_the_extrapolated_latent():
    from latent_focus.latent import extrapolate
    from latent_focus.models import build_model
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    x = torch.rand(3, 2, 1, 32, 32)
    with torch.no_grad():
        terms = triplet_losses(model, x, torch.full((2,), 0.25), "direct", extrapolation=2.0)
        za_ext = extrapolate(model.encode(x[1]), model.encode(x[2]), 0.25)
        expected = 2.0 * (model.decode(za_ext) - x[0]).abs().mean()
    assert set(terms) == {"rec", "interp", "latent", "extrap", "total"}
    assert torch.isclose(terms["extrap"], expected)
    with pytest.raises(InputError, match="extrapolation"):
        TrainConfig(extrapolation=-1).check()


class _Scaled(torch.nn.Module):
    """A model whose latent is another model's, times ``k`` (and decoded back)."""

    def __init__(self, inner, k):
        super().__init__()
        self.inner, self.k = inner, k

    def encode(self, x):
        return tuple(p * self.k for p in self.inner.encode(x))

    def decode(self, z):
        return self.inner.decode(tuple(p / self.k for p in z))


class _MidpointLatent(torch.nn.Module):
    """Another model, except that plane b of ``batch`` is encoded as the midpoint of planes a and c."""

    def __init__(self, inner, batch):
        super().__init__()
        self.inner, self.batch = inner, batch

    def encode(self, x):
        if not torch.equal(x, self.batch[1]):
            return self.inner.encode(x)
        za, zc = self.inner.encode(self.batch[0]), self.inner.encode(self.batch[2])
        return tuple(0.5 * a + 0.5 * c for a, c in zip(za, zc))

    def decode(self, z):
        return self.inner.decode(z)


def test_relative_latent_term_ignores_latent_scale():
    from latent_focus.models import build_model
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    x = torch.rand(3, 2, 1, 32, 32)
    alpha = torch.full((2,), 0.5)
    with torch.no_grad():
        plain = [triplet_losses(m, x, alpha, "direct")["latent"] for m in (model, _Scaled(model, 100.0))]
        rel = [triplet_losses(m, x, alpha, "direct", relative_latent=True)["latent"]
               for m in (model, _Scaled(model, 100.0))]
    assert torch.isclose(plain[1], 100 * plain[0], rtol=1e-4)  # Eq. 4 scales with the latent
    assert torch.isclose(rel[1], rel[0], rtol=5e-3) and rel[0] > 0
    with torch.no_grad():  # a latent exactly linear in the triplet gives zero
        linear = _MidpointLatent(model, x)
        assert float(triplet_losses(linear, x, alpha, "direct", relative_latent=True)["latent"]) < 1e-6
        # ... and not at another alpha, where b should sit elsewhere on the line from a to c
        assert float(triplet_losses(linear, x, alpha / 2, "direct", relative_latent=True)["latent"]) > 0.1
    with pytest.raises(InputError, match="direct"):
        TrainConfig(regularization="indirect", relative_latent=True).check()


@pytest.mark.parametrize("reg", ["baseline", "direct"])
def test_validation_scores_the_interpolated_plane(reg):
    from latent_focus.methods.latent.training import _validate
    from latent_focus.metrics import psnr
    from latent_focus.models import build_model
    torch.manual_seed(0)
    model = build_model("tiny")
    x, alpha = torch.rand(3, 2, 1, 32, 32), torch.tensor([0.5, 0.25])
    out = _validate(model, (x, alpha), _cfg(regularization=reg), torch.device("cpu"))
    assert model.training
    model.eval()
    with torch.no_grad():
        za, zc = model.encode(x[0]), model.encode(x[2])
        w = alpha.view(-1, 1, 1, 1)
        interp = model.decode(tuple(w * a + (1 - w) * c for a, c in zip(za, zc)))
    expected = np.mean([psnr(t.numpy(), p.numpy(), data_range=1.0) for t, p in zip(x[1, :, 0], interp[:, 0])])
    assert out["val_psnr_interp"] == pytest.approx(expected, abs=1e-4)
    assert ("val_interp" in out) == (reg == "direct")


def test_training_is_reproducible_and_learns(tmp_path, blurred_stack):
    runs = []
    for name in ("a", "b"):
        hist = [p.losses["total"] for p in train([blurred_stack], tmp_path / name, _cfg(steps=30, lr=2e-3))]
        runs.append(hist)
    assert runs[0] == runs[1]
    assert np.mean(runs[0][-5:]) < np.mean(runs[0][:5])
    card = read_card(tmp_path / "a")
    assert card.seed == 0 and card.training["recipe"]["regularization"] == "direct"
    assert len(read_history(tmp_path / "a")) == 30 and card.training["data"][0]["sha256"]


def test_resume_continues_where_it_stopped(tmp_path, blurred_stack):
    full = [p.losses["total"] for p in train([blurred_stack], tmp_path / "full", _cfg(steps=6))]
    gen = train([blurred_stack], tmp_path / "part", _cfg(steps=6))
    first = [next(gen).losses["total"] for _ in range(4)]
    gen.close()  # cancel after step 4: the weights of step 4 are kept
    assert torch.load(tmp_path / "part" / CHECKPOINT, weights_only=True)["step"] == 4
    rest = [p.losses["total"] for p in train([blurred_stack], tmp_path / "part", _cfg(steps=6))]
    assert len(rest) == 2
    assert np.allclose(first + rest, full, rtol=1e-4)


def test_checkpoint_from_before_a_new_setting_still_resumes(tmp_path, blurred_stack):
    gen = train([blurred_stack], tmp_path / "m", _cfg(steps=6))
    [next(gen) for _ in range(3)]
    gen.close()
    path = tmp_path / "m" / CHECKPOINT
    state = torch.load(path, weights_only=True)
    del state["recipe"]["relative_latent"]  # written before that setting existed; its default applies
    torch.save(state, path)
    assert len(list(train([blurred_stack], tmp_path / "m", _cfg(steps=6)))) == 3
    state["recipe"]["relative_latent"] = True  # a different recipe is a different run
    torch.save(state, path)
    with pytest.raises(InputError, match="already exists"):
        list(train([blurred_stack], tmp_path / "m", _cfg(steps=6)))


def test_existing_output_is_not_clobbered(tmp_path, blurred_stack):
    list(train([blurred_stack], tmp_path / "m", _cfg()))
    before = (tmp_path / "m" / WEIGHTS).read_bytes()
    with pytest.raises(InputError, match="already exists"):
        list(train([blurred_stack], tmp_path / "m", _cfg(regularization="baseline")))
    assert (tmp_path / "m" / WEIGHTS).read_bytes() == before


def test_fine_tune_from_model(tmp_path, tiny_model, blurred_stack):
    out = tmp_path / "ft"
    list(train([blurred_stack], out, _cfg(preset="paper"), init=tiny_model))
    card = read_card(out)
    assert card.preset == "tiny"  # the parent's architecture wins
    assert card.training["fine_tuned_from"]["weights_sha256"] == read_card(tiny_model).weights_sha256
    assert card.deblur_strength is None  # an uncalibrated parent passes on no strength: Eq. 2 itself
    assert LatentFocus(out, "cpu").strength == 1.0


def test_fine_tuned_model_inherits_the_calibrated_strength(tmp_path, tiny_model, blurred_stack):
    import shutil
    parent = tmp_path / "calibrated"
    shutil.copytree(tiny_model, parent)
    card = json.loads((parent / "card.json").read_text())
    card["deblur_strength"] = {"value": 0.35, "pairs": 12, "by_strength": []}
    (parent / "card.json").write_text(json.dumps(card))
    out = tmp_path / "ft"
    list(train([blurred_stack], out, _cfg(), init=parent))
    assert read_card(out).deblur_strength == {"value": 0.35, "inherited_from": "calibrated"}
    assert LatentFocus(out, "cpu").strength == 0.35
    card["deblur_strength"] = {"value": 3}
    (parent / "card.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="deblur_strength"):
        LatentFocus(parent, "cpu")


def test_corrupt_weights_and_cards_are_refused(tmp_path, tiny_model):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    (bad / WEIGHTS).write_bytes(b"garbage")
    with pytest.raises(InputError, match="corrupt"):
        load_model(bad)
    card = json.loads((bad / "card.json").read_text())
    card.pop("weights_sha256")
    (bad / "card.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="corrupt"):
        load_model(bad)
    (bad / "card.json").write_text("{not json")
    with pytest.raises(InputError, match="corrupt"):
        LatentFocus(bad, "cpu")


def test_weights_file_cannot_execute_code(tmp_path, tiny_model):
    import shutil

    class Evil:
        def __reduce__(self):
            return (exec, ("open('pwned', 'w').write('x')",))

    bad = tmp_path / "evil"
    shutil.copytree(tiny_model, bad)
    torch.save({"x": Evil()}, bad / WEIGHTS)
    card = json.loads((bad / "card.json").read_text())
    card.pop("weights_sha256")
    (bad / "card.json").write_text(json.dumps(card))
    with pytest.raises(InputError):
        load_model(bad)
    assert not (tmp_path / "pwned").exists()


def test_bad_training_input(tmp_path):
    with pytest.raises(InputError, match="regularization"):
        list(train([np.random.rand(5, 64, 64)], None, _cfg(regularization="magic")))
    with pytest.raises(InputError, match="triplet"):
        list(train([np.random.rand(2, 64, 64)], None, _cfg()))
    with pytest.raises(InputError, match="at least"):
        list(train([np.random.rand(5, 32, 32)], None, _cfg()))


def test_given_focus_and_weights_choose_the_triplets_and_how_often_each_stack_is_drawn():
    from latent_focus.methods.latent.training import _prepare, _sample_batch
    rng = np.random.default_rng(0)
    uniform, binary = rng.random((7, 64, 64)), (rng.random((7, 64, 64)) > 0.5).astype(float)
    cfg = _cfg(batch_size=400, crop=32)
    sources = _prepare([uniform, binary], cfg, focus=[0, 6], weights=[1.0, 3.0])
    assert all(a < b < c for a, b, c, _ in sources[0].triplets)  # focus 0: every triplet runs upwards
    assert all(a > b > c for a, b, c, _ in sources[1].triplets)
    x, _ = _sample_batch(sources, cfg, np.random.default_rng(1))
    from_binary = float((x[0].std(dim=(1, 2, 3)) > 0.4).float().mean())  # std 0.5 against 0.29
    assert 0.68 < from_binary < 0.82  # drawn 3 times in 4
    with pytest.raises(InputError, match="one in-focus plane and one weight per training stack"):
        _prepare([uniform], cfg, focus=[0, 1])
    with pytest.raises(InputError, match="weights must be positive"):
        _prepare([uniform], cfg, weights=[0.0])
