"""The identity / blur-code models, their losses and trainer, the blur-code method, its score and its napari section."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latent_focus.cli import main
from latent_focus.errors import InputError
from latent_focus.io import Stack, read_provenance
from latent_focus.methods import get_method, load_method, run
from latent_focus.methods.blur_code import BlurCodeParams
from latent_focus.methods.blur_code.codes import BlurAxis, mean_code
from latent_focus.methods.blur_code.live import encode_plane, render
from latent_focus.methods.blur_code.losses import (
    LossWeights,
    code_length,
    contrastive_term,
    delay_weight,
    disentangled_losses,
    distance,
    mlvae_losses,
    ssim,
)
from latent_focus.methods.blur_code.sampling import prepare_sources, sample_batch
from latent_focus.methods.blur_code.training import BlurCodeConfig, train
from latent_focus.metrics import mlvae_score, r_squared
from latent_focus.metrics import ssim as ssim_np
from latent_focus.models import build_model, load_model, read_card
from latent_focus.models.disentangled import group_evidence, join_latent, split_latent
from latent_focus.models.modelfile import CHECKPOINT


def _series(size: int = 96, planes: int = 7, seed: int = 1) -> np.ndarray:
    """A defocus series of random blobs: plane 3 sharpest, blur growing with the distance from it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    img = sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
              for cy, cx, r in rng.uniform((4, 4, 1.5), (size - 4, size - 4, 4), (30, 3)))
    k2 = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2
    f = np.fft.fft2(img)
    return np.stack([100 + 1000 * np.real(np.fft.ifft2(f * np.exp(-2 * (np.pi * 1.2 * abs(p - 3)) ** 2 * k2)))
                     for p in range(planes)]).astype(np.float32)


def _config(**kw) -> BlurCodeConfig:
    base = dict(steps=3, batch_size=2, crop=32, device="cpu", validate_every=2, checkpoint_every=2, delay=2)
    return BlurCodeConfig(**{**base, **kw})


@pytest.fixture(scope="session")
def stacks() -> list[Stack]:
    return [Stack(_series(seed=s), z_um=np.arange(7) * 0.5, source=f"series {s}") for s in (1, 2)]


@pytest.fixture(scope="session")
def models(tmp_path_factory, stacks) -> dict:
    """A disentangled and an ML-VAE model, each trained for three steps."""
    folder = tmp_path_factory.mktemp("blur_models")
    out = {}
    for preset in ("disentangled", "ml-vae"):
        for _ in train(stacks, folder / preset, _config(preset=preset), focus=[3, 3]):
            pass
        out[preset] = folder / preset
    return out


# -- models and losses ------------------------------------------------------------------------------

@pytest.mark.parametrize("preset, dim", [("disentangled", 1), ("ml-vae", 8)])
def test_presets_encode_identity_and_blur_codes(preset, dim):
    torch.manual_seed(0)
    model = build_model(preset).eval()
    x = torch.rand(2, 1, 48, 64)
    z = model.encode(x)
    identity, code = split_latent(z)
    assert code.shape == (2, dim) and len(identity) == 4 and identity[0].shape[-2:] == (24, 32)
    assert model.decode(z).shape == x.shape
    # the blur code steers the decoder (FiLM); a fresh model starts unconditioned, so nudge one layer
    with torch.no_grad():
        model.film[0].weight.normal_()
    other = join_latent(identity, code + 3.0)
    assert not torch.allclose(model.decode(z), model.decode(other))


def test_group_evidence_is_the_product_of_the_members_gaussians():
    mu = torch.tensor([[0.0], [2.0], [5.0]])
    logvar = torch.log(torch.tensor([[1.0], [4.0], [2.0]]))
    g_mu, g_logvar = group_evidence(mu, logvar, torch.tensor([0, 0, 1]))
    # N(0, 1) * N(2, 4): precision 1 + 1/4, mean (0 * 1 + 2 / 4) / 1.25
    assert g_mu[:, 0].tolist() == pytest.approx([0.4, 5.0])
    assert torch.exp(g_logvar)[:, 0].tolist() == pytest.approx([0.8, 2.0])


def test_distance_contrastive_and_delay():
    u, v = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    length = code_length(torch.cat([u, v]))  # RMS distance from the mean: 2.5
    assert float(length) == pytest.approx(2.5)
    assert float(code_length(torch.cat([u, v]) * 10 + 7)) == pytest.approx(25.0)  # follows scale, not offset
    assert float(distance(u, v, length)) == pytest.approx(2.0, rel=1e-5)
    assert float(contrastive_term(u, v, True, 0.6, length)) == pytest.approx(2.0, rel=1e-5)
    assert float(contrastive_term(u, v, False, 0.6, length)) == 0.0  # far enough apart already
    assert float(contrastive_term(u, u + 0.25, False, 0.6, 1.0)) == pytest.approx(0.6 - 0.25 * np.sqrt(2), rel=1e-4)
    assert delay_weight(0, 100) == 0.0 and delay_weight(100, 100) > 0.99 and delay_weight(5, 0) == 1.0


def test_torch_ssim_matches_the_metric():
    rng = np.random.default_rng(0)
    a = rng.random((40, 40)).astype(np.float32)
    b = (a + 0.2 * rng.random((40, 40))).astype(np.float32)
    got = float(ssim(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None], 1.0))
    assert got == pytest.approx(ssim_np(a, b, data_range=1.0), abs=1e-4)


def test_loss_terms_and_ablations(stacks):
    torch.manual_seed(0)
    sources = prepare_sources(stacks, [3, 3], crop=32)
    batch = sample_batch(sources, 4, 32, np.random.default_rng(0))
    model = build_model("disentangled")
    terms = disentangled_losses(model, batch, LossWeights(), beta=0.5)
    assert set(terms) == {"rec", "cross", "cont", "cons", "total"}
    extra = 0.5 * (terms["cons"] + terms["cont"] + terms["cross"])
    assert torch.isclose(terms["total"], terms["rec"] + extra)
    no_cont = disentangled_losses(model, batch, LossWeights(contrastive=0), beta=1.0)
    assert torch.isclose(no_cont["total"], no_cont["rec"] + no_cont["cons"] + no_cont["cross"])
    rec_only = disentangled_losses(model, batch, LossWeights(), beta=0.0)
    assert torch.isclose(rec_only["total"], rec_only["rec"])
    vae = build_model("ml-vae").eval()
    terms = mlvae_losses(vae, batch, LossWeights(kl=0.5))
    assert set(terms) == {"rec", "kl_blur", "kl_identity", "total"}
    assert torch.isclose(terms["total"], terms["rec"] + 0.5 * (terms["kl_blur"] + terms["kl_identity"]))


def test_pairs_share_identity_within_a_field_and_blur_within_a_couple():
    """Planes whose brightness encodes their distance from focus: a couple's a planes match, a field's two differ."""
    rng = np.random.default_rng(5)
    texture = rng.random((6, 80, 80)).astype(np.float32) * 0.01
    level = np.array([3, 2, 1, 0, 1, 2], dtype=np.float32)  # focus plane 3, mirrored distances
    data = texture + level[:, None, None]
    sources = prepare_sources([Stack(data), Stack(data * 1.0 + 0.001)], [3, 3], crop=32)
    assert sources[0].sides == [[3, 2, 1, 0], [3, 4, 5]]
    batch = sample_batch(sources, 40, 32, np.random.default_rng(1), focus_pairs=0.3)
    means = batch.x.mean(dim=(2, 3, 4))  # (2, fields), increasing with the distance from focus
    partner = batch.partner
    assert torch.equal(partner[partner], torch.arange(40))
    assert torch.allclose(means[0], means[0][partner], atol=0.02)  # a planes of a couple share their blur
    same = batch.same_blur_b
    assert torch.allclose(means[1][same], means[1][partner][same], atol=0.02)
    assert (~same).any() and bool(((means[0] - means[1]).abs() > 0.05).all())  # a field's planes differ


# -- training ---------------------------------------------------------------------------------------

def test_training_writes_a_card_with_the_in_focus_code_and_resumes_identically(tmp_path, stacks):
    config = _config(steps=2, checkpoint_every=1)
    whole = list(train(stacks, tmp_path / "whole", config, focus=[3, 3]))
    assert [p.done for p in whole] == [1, 2] and whole[-1].finished
    assert whole[1].losses.keys() >= {"rec", "cross", "cont", "cons", "total"}
    card = read_card(tmp_path / "whole")
    assert card.preset == "disentangled" and card.steps_done == 2
    code = card.extra["blur_code"]
    assert code["dim"] == 1 and len(code["in_focus"]) == 1 and code["range"][0] <= code["range"][1]
    losses = card.extra["training_losses"]
    assert losses["weights"]["contrastive"] == 1.0 and losses["margin"] == 0.6 and "VGG-16" in losses["reconstruction"]
    assert card.training["data"][0]["focus"] == 3
    # stop after one step, then run the same command again: the same weights as the uninterrupted run
    gen = train(stacks, tmp_path / "parts", config, focus=[3, 3])
    next(gen), gen.close()
    assert (tmp_path / "parts" / CHECKPOINT).is_file() and read_card(tmp_path / "parts").steps_done == 1
    rest = list(train(stacks, tmp_path / "parts", config, focus=[3, 3]))
    assert [p.done for p in rest] == [2]
    a, _ = load_model(tmp_path / "whole")
    b, _ = load_model(tmp_path / "parts")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


@pytest.mark.parametrize("preset", ["disentangled", "ml-vae"])
def test_warm_start_copies_a_compact_autoencoder(preset):
    from latent_focus.methods.blur_code.training import warm_start
    torch.manual_seed(0)
    source, model = build_model("compact").eval(), build_model(preset).eval()
    assert warm_start(model, source) == len(source.state_dict())
    x = torch.rand(1, 1, 32, 32)
    identity, code = split_latent(model.encode(x))
    for ours, theirs in zip(identity, source.encode(x)):
        assert torch.allclose(ours, theirs, atol=1e-6)
    # the modulation starts at zero, so the decoder is the source's, whatever the blur code
    assert torch.allclose(model.decode(join_latent(identity, code + 5)), source.decode(source.encode(x)), atol=1e-5)
    with pytest.raises(InputError, match="does not match"):
        warm_start(model, build_model("tiny"))


class _MeanCode(torch.nn.Module):
    """A stand-in model whose blur code is the mean of the crop."""

    def encode(self, x):
        return (x[:, :, :1, :1], x.mean(dim=(1, 2, 3))[:, None])


def test_code_summary_orients_the_axis_within_stacks():
    """Codes grow with the distance from focus in every stack, though stacks with larger distances sit lower."""
    from latent_focus.methods.blur_code.sampling import Source
    from latent_focus.methods.blur_code.training import code_summary
    sources = []
    for k, (offset, step) in enumerate([(10.0, 1.0), (0.0, 5.0), (-10.0, 10.0)]):
        level = np.abs(np.arange(5) - 2) * step
        data = (offset + 0.01 * level[:, None, None] + np.zeros((5, 32, 32))).astype(np.float32)
        sources.append(Source(data, 2, level, [[2, 1, 0], [2, 3, 4]], str(k), str(k)))
    info = code_summary(_MeanCode(), sources, "cpu")
    assert info["axis"] == [1.0] and info["in_focus"] == pytest.approx([0.0], abs=1e-5)
    assert info["focus_spread"] == pytest.approx(np.std([10.0, 0.0, -10.0]), rel=1e-5)


def test_training_refuses_bad_input(tmp_path, stacks):
    with pytest.raises(InputError, match="blur-code preset"):
        list(train(stacks, None, _config(preset="compact")))
    with pytest.raises(InputError, match="crop"):
        list(train(stacks, None, _config(crop=40)))
    with pytest.raises(InputError, match="one plane index per training stack"):
        list(train(stacks, None, _config(), focus=[3]))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="already exists"):
        list(train(stacks, tmp_path / "busy", _config()))


# -- the method and the command line ----------------------------------------------------------------

def test_blur_code_method_deblurs_with_the_in_focus_code(models, stacks):
    method = load_method("blur-code", str(models["disentangled"]), "cpu")
    axis = method.axis
    assert get_method("blur-code").input == "plane"
    out = run(method.restore(stacks[0], 0, method.default_params()))
    assert out.image.shape == (96, 96) and out.info["decoding"] == "residual"
    assert out.info["in_focus_code"] == pytest.approx(axis.focus_value, abs=1e-5)
    # decoding at the plane's own code with residual decoding gives the plane back
    own = out.info["blur_code"]
    same = run(method.restore(stacks[0], 0, BlurCodeParams(code=own)))
    assert np.allclose(same.image, stacks[0].data[0], atol=2e-3 * np.ptp(stacks[0].data[0]))
    plain = run(method.restore(stacks[0], 0, BlurCodeParams(code=axis.focus_value + 1, decoding="plain")))
    assert plain.info["decoding"] == "plain" and not np.allclose(plain.image, same.image)
    vae = load_method("blur-code", str(models["ml-vae"]), "cpu")
    assert BlurAxis.from_card(vae.engine.card).dim == 8
    with pytest.raises(InputError, match="1-D blur code"):
        run(vae.restore(stacks[0], 0, BlurCodeParams(code=0.5)))


def test_cli_trains_restores_and_scores(tmp_path, capsys, models):
    data = tmp_path / "stack.tif"
    import tifffile
    tifffile.imwrite(data, _series(seed=4))
    model = tmp_path / "m"
    assert main(["train", str(data), "-o", str(model), "--preset", "disentangled", "--steps", "2", "--batch-size",
                 "2", "--crop", "32", "--device", "cpu", "--focus", "3", "--contrastive", "0.5"]) == 0
    assert read_card(model).training["recipe"]["contrastive"] == 0.5
    out = tmp_path / "out.tif"
    assert main(["restore", str(data), "-o", str(out), "--method", "blur-code", "--model", str(model),
                 "--plane", "0"]) == 0
    assert read_provenance(out)["method"] == "blur-code"
    assert main(["restore", str(data), "-o", str(tmp_path / "o2.tif"), "--method", "blur-code", "--model",
                 str(model), "--plane", "1", "--code", "0.25"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # refused while parsing the options
        main(["restore", str(data), "-o", str(tmp_path / "o3.tif"), "--method", "blur-code", "--model", str(model),
              "--code", "soft"])
    assert exc.value.code == 2
    assert main(["restore", str(data), "-o", str(tmp_path / "o4.tif"), "--method", "blur-code", "--model",
                 str(models["ml-vae"]), "--plane", "0", "--code", "1"]) == 2
    assert "1-D blur code" in capsys.readouterr().err
    assert not (tmp_path / "o3.tif").exists() and not (tmp_path / "o4.tif").exists()
    assert main(["blur-code-score", str(data), "--focus", "3", "--model", str(model), "--epochs", "5",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["mlvae"]) >= {"identity_accuracy", "blur_accuracy", "score"}
    assert len(report["stacks"][0]["planes"]) == 7
    rows = report["stacks"][0]["planes"]  # the decoder's response to the code, on the planes it moved only
    assert all(np.isfinite(r.get("psnr_per_code", np.nan)) == bool(r["moved"]) for r in rows if "moved" in r)
    # evaluate: the method's deblurring and its ML-VAE score, beside the default latent model's table
    assert main(["evaluate", str(data), "--focus", "3", "--method", "blur-code", "--model", str(model),
                 "--max-cases", "2", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "blur-code: ML-VAE score" in printed and "default" in printed


def test_a_latent_model_is_refused(tiny_model, capsys, tmp_path):
    import tifffile
    data = tmp_path / "s.tif"
    tifffile.imwrite(data, _series())
    assert main(["restore", str(data), "-o", str(tmp_path / "o.tif"), "--method", "blur-code", "--model",
                 str(tiny_model), "--plane", "0"]) == 2
    assert "without a blur code" in capsys.readouterr().err


# -- metrics ----------------------------------------------------------------------------------------

def test_mlvae_score_separates_identity_from_blur():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 10)
    planes = np.tile(np.arange(10), 6)
    identity = np.eye(6)[labels] * 3 + 0.3 * rng.standard_normal((60, 6))
    blur = planes[:, None] + 0.01 * rng.standard_normal((60, 1))  # depends on the plane only
    score = mlvae_score(identity, blur, labels, planes % 2 == 0, epochs=100)
    assert score.identity_accuracy == 1.0 and score.blur_accuracy < 0.4
    assert score.score == pytest.approx(score.identity_accuracy - score.blur_accuracy)
    assert score.chance == pytest.approx(1 / 6) and score.samples == 30
    leaky = mlvae_score(identity, identity[:, :1] * 0 + labels[:, None], labels, planes % 2 == 0, epochs=100)
    assert leaky.blur_accuracy == 1.0 and leaky.score == pytest.approx(0.0)
    with pytest.raises(ValueError, match="both sides"):
        mlvae_score(identity, blur, labels, np.ones(60, bool))


def test_r_squared():
    x = np.arange(10.0)
    assert r_squared(x, 2 * x + 1) == pytest.approx(1.0)
    assert r_squared(x, (x - 4.5) ** 2) == pytest.approx(0.0, abs=1e-12)
    assert r_squared(x, np.ones(10)) == 0.0


# -- the slider -------------------------------------------------------------------------------------

def test_live_render_previews_and_gives_the_plane_back_at_its_own_code(models):
    from latent_focus.engine import LatentFocus
    engine = LatentFocus(str(models["disentangled"]), "cpu")
    big = Stack(np.stack([np.kron(p, np.ones((4, 4))) for p in _series(size=100, planes=3)]).astype(np.float32))
    enc = run(encode_plane(engine, big, 1))
    assert enc.preview is not None and enc.scale < 1 and enc.codes.shape == (3,)
    assert enc.own_value == pytest.approx(BlurAxis.from_card(engine.card).value(mean_code(enc.full)))
    full = render(enc, enc.own_value)
    assert np.allclose(full, big.data[1], atol=1e-3 * np.ptp(big.data[1]))
    preview = render(enc, enc.axis.focus_value - 1.0, preview=True)
    assert preview.shape == (400, 400) and np.isfinite(preview).all()


class _Context:
    """What the panel offers a section, run synchronously: the chosen layer, its stack and a result maker."""

    def __init__(self, viewer, layer, model):
        self.viewer, self._layer, self._model = viewer, layer, model
        self.jobs = []

    def layer(self):
        return self._layer

    def stack(self):
        return Stack(np.array(self._layer.data, dtype=np.float32))

    def current_plane(self) -> int:
        return 2

    def model(self):
        return self._model

    def device(self) -> str:
        return "cpu"

    def run_job(self, job, on_done, what):
        self.jobs.append(what)
        on_done(run(job))

    def add_result(self, data, name, planes, metadata, colormap=None, opacity=1.0):
        return self.viewer.add_image(data, name=name, metadata=dict(metadata))


def test_blur_slider_section_decodes_into_one_layer_per_plane(make_napari_viewer, qtbot, models):
    from latent_focus.napari.sections.blur_code import TICKS, BlurCodeSection

    viewer = make_napari_viewer()
    data = _series(size=64)
    layer = viewer.add_image(data.copy(), name="series")
    section = BlurCodeSection(_Context(viewer, layer, str(models["disentangled"])))
    viewer.window.add_dock_widget(section)
    assert not section.encode_button.isEnabled()  # until the panel has loaded the method
    section.method_ready(load_method("blur-code", str(models["disentangled"]), "cpu"))
    section.encode()
    assert section.encoded is not None and section.encoded.plane == 2 and section.slider.isEnabled()
    assert section.plot.codes is not None and len(section.plot.codes) == 7
    section.slider.setSliderDown(True)
    for tick in (100, 300, 500):  # a drag: previews, at most one waiting behind the running decode
        section.slider.setValue(tick)
    section.slider.setSliderDown(False)
    section.request(preview=False)
    qtbot.waitUntil(lambda: "series blur code [2]" in viewer.layers and not section._runner.busy, timeout=15000)
    out = viewer.layers["series blur code [2]"]
    assert out.metadata["plane"] == 2 and out.metadata["blur_code"] == pytest.approx(section.value())
    section.focus_button.click()
    qtbot.waitUntil(lambda: not section._runner.busy and out.metadata["blur_code"] == pytest.approx(
        section.encoded.axis.focus_value, abs=2 * (section._hi - section._lo) / TICKS), timeout=15000)
    assert len(viewer.layers) == 2  # updated in place
    assert np.array_equal(layer.data, data)  # the user's data untouched


def test_training_dock_offers_and_dispatches_the_blur_code_presets(make_napari_viewer, monkeypatch, tmp_path, qtbot):
    from latent_focus.models import store
    from latent_focus.napari import training_dock
    monkeypatch.setenv("LATENT_FOCUS_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "shipped")  # a new model, not a fine-tuned one
    calls = []

    def spy(stacks, output, config, **kw):
        calls.append(config.preset)
        yield from ()

    monkeypatch.setattr(training_dock, "train_from_config", spy)
    viewer = make_napari_viewer()
    viewer.add_image(_series(size=64), name="series")
    dock = training_dock.TrainingDock(viewer)
    viewer.window.add_dock_widget(dock)
    names = [dock.form.preset.itemText(i) for i in range(dock.form.preset.count())]
    assert {"disentangled", "ml-vae"} <= set(names)
    dock.form.preset.setCurrentText("disentangled")
    dock.start()
    qtbot.waitUntil(lambda: not dock.run.running, timeout=10000)
    assert calls == ["disentangled"]
