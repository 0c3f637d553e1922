"""psf-rl: the parametric PSF model, the spatially-variant TV Richardson-Lucy, the estimator, its training, the
depth calibration, the commands and the napari section."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from latent_focus.cli import main
from latent_focus.errors import InputError
from latent_focus.io import Stack, read_provenance, read_stack
from latent_focus.methods import get_method, load_method, run
from latent_focus.methods.psf_rl import PsfRLParams, optics_for
from latent_focus.methods.psf_rl.deconvolve import Padding, TiledBlur, richardson_lucy_sv, run_to_end
from latent_focus.methods.psf_rl.depth import DepthCalibration, fit_calibration
from latent_focus.methods.psf_rl.estimator import ParameterMaps, decode_outputs, encode_targets, transform_targets
from latent_focus.methods.psf_rl.plan import MeasuredPsf, iterations_rule, plan_plane
from latent_focus.optics import born_wolf_psf, brightfield_defocus, fft_convolve, transmission_from_image
from latent_focus.optics.deconvolution import richardson_lucy
from latent_focus.optics.parametric import Optics, brightfield_parametric, canonical, parametric_psf, parametric_psfs
from latent_focus.tiling import plan_tiles

OPTICS = Optics(1.2, 0.46, 1.33, 0.256)


def blobs(shape=(96, 96), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    img = np.zeros(shape)
    for _ in range(30):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(1, 4)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return 1000 * img / img.max() + 100


# -- the parametric PSF model ---------------------------------------------------------------------------------

def test_without_astigmatism_the_model_is_born_wolf():
    for z in (0.0, 0.8):
        a = born_wolf_psf(z, OPTICS.na, OPTICS.wavelength_um, OPTICS.n_immersion, OPTICS.pixel_size_um, 21)
        b = parametric_psf(z, 0.0, 0.0, OPTICS, 21)
        assert np.abs(a - b).max() < 1e-6 * a.max() + 1e-7


def test_sign_symmetry_and_canonical_parameters():
    a = parametric_psf(1.5, 0.4, -0.2, OPTICS, 41)
    b = parametric_psf(-1.5, -0.4, 0.2, OPTICS, 41)
    c = parametric_psf(1.5, -0.4, -0.2, OPTICS, 41)
    assert np.abs(a - b).max() < 1e-6  # the same PSF: the estimator can only see the canonical member
    assert np.abs(a - c).max() > 1e-3  # but the astigmatism's sign relative to the defocus shows
    assert np.allclose(canonical([[-1.5, -0.4, 0.2]]), [[1.5, 0.4, -0.2]])


@pytest.mark.parametrize("op", range(8))
def test_target_transform_matches_flipped_psfs(op):
    """Flipping x or y negates A45, a transpose negates A0: training augmentation relies on it."""
    p = np.array([1.0, 0.3, 0.2])
    psf = torch.from_numpy(parametric_psf(*p, OPTICS, 31))
    if op & 1:
        psf = torch.flip(psf, (1,))
    if op & 2:
        psf = torch.flip(psf, (0,))
    if op & 4:
        psf = psf.T
    q = transform_targets(torch.tensor(p[None], dtype=torch.float32), torch.tensor([op]))[0].numpy()
    assert np.abs(psf.numpy() - parametric_psf(*q, OPTICS, 31)).max() < 1e-6


def test_brightfield_variant_is_the_simulators_model_plus_astigmatism():
    t = transmission_from_image(blobs((64, 64)), phase_rad=1.0, absorption=0.05)
    optics = Optics(0.75, 0.55, 1.0, 0.2)
    ref = brightfield_defocus(t, 4.0, 0.55, 0.2, 0.75, 0.3, 1.0)
    assert np.abs(brightfield_parametric(t, 4.0, 0.0, 0.0, optics, 0.3) - ref).max() < 1e-6
    near = brightfield_parametric(t, 4.0, 1e-7, 0.0, optics, 0.3)  # the astigmatic code path, no astigmatism
    assert np.abs(near - ref).max() < 1e-4
    astig = brightfield_parametric(t, 4.0, 0.5, 0.0, optics, 0.3)
    assert np.abs(astig - ref).max() > 1e-3
    # a phase object's contrast inverts through focus: the sign of brightfield defocus is visible
    assert np.abs(brightfield_parametric(t, -4.0, 0.0, 0.0, optics, 0.3) - ref).max() > 1e-2


# -- spatially-variant Richardson-Lucy -------------------------------------------------------------------------

def test_single_psf_agrees_with_the_numpy_richardson_lucy():
    img = blurred = fft_convolve(blobs((90, 110)), parametric_psf(1.0, 0, 0, OPTICS, 25))
    img = np.random.default_rng(0).poisson(blurred).astype(np.float32)
    k = parametric_psf(1.0, 0, 0, OPTICS, 25)
    ref = richardson_lucy(img, k, 30)
    out = run_to_end(richardson_lucy_sv(img, k[None], [(0, 90, 0, 110)], 0, 30))
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()
    boxes = plan_tiles(90, 110, 40, 10)  # many tiles, one PSF: still the same deconvolution
    out = run_to_end(richardson_lucy_sv(img, np.stack([k] * len(boxes)), boxes, 10, 30))
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()


def test_tiled_blur_is_seamless_and_matches_each_tiles_psf():
    h, w = 112, 112
    boxes = plan_tiles(h, w, 48, 16)  # 3 x 3 tiles, every tile's centre in that tile alone
    zs = np.linspace(0.5, 1.5, len(boxes))  # a tilted sample: the defocus grows tile by tile
    ks = parametric_psfs(np.stack([zs, 0 * zs, 0 * zs], 1), OPTICS, 31)
    padding = Padding((h, w), 31)
    blur = TiledBlur(ks, boxes, (h, w), 16, padding.fshape, (padding.py, padding.px), torch.device("cpu"))
    flux = padding.crop(blur.adjoint(torch.ones(padding.fshape)))
    assert np.abs(flux - 1).max() < 1e-4  # every point source keeps its flux, whatever the tile
    flat = padding.crop(blur.forward(torch.ones(padding.fshape)))  # a flat object's image changes smoothly:
    assert np.abs(flat - 1).max() < 0.05  # no dark or bright tile borders, no seams
    assert max(np.abs(np.diff(flat, axis=0)).max(), np.abs(np.diff(flat, axis=1)).max()) < 0.01
    # a point in the middle of a tile is blurred by (almost exactly) that tile's PSF
    t = len(boxes) // 2
    y0, y1, x0, x1 = boxes[t]
    x = np.zeros((h, w), np.float32)
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    x[cy, cx] = 1
    got = padding.crop(blur.forward(torch.from_numpy(padding.pad(x))))[cy - 3:cy + 4, cx - 3:cx + 4]
    want = ks[t][15 - 3:15 + 4, 15 - 3:15 + 4]
    assert np.abs(got - want).max() < 0.05 * want.max()
    assert 1 < blur.rank <= 6


def test_tv_regularisation_smooths_noise_and_cancel_stops():
    img = np.random.default_rng(3).poisson(fft_convolve(blobs(), parametric_psf(1.0, 0, 0, OPTICS, 25)) / 10)
    k = parametric_psf(1.0, 0, 0, OPTICS, 25)[None]
    box = [(0, 96, 0, 96)]
    plain = run_to_end(richardson_lucy_sv(img, k, box, 0, 20))
    tv = run_to_end(richardson_lucy_sv(img, k, box, 0, 20, tv=0.01))

    def total_variation(a):
        return np.abs(np.diff(a, axis=0)).sum() + np.abs(np.diff(a, axis=1)).sum()
    assert total_variation(tv) < 0.9 * total_variation(plain)
    gen = richardson_lucy_sv(img, k, box, 0, 50)
    assert next(gen) == 1
    gen.close()  # cancelling is closing the generator
    with pytest.raises(StopIteration):
        next(gen)


def test_bad_arguments_raise_input_error():
    k = parametric_psf(1.0, 0, 0, OPTICS, 25)[None]
    with pytest.raises(InputError):
        run_to_end(richardson_lucy_sv(np.full((20, 20), np.nan), k, [(0, 20, 0, 20)], 0, 5))
    with pytest.raises(InputError):
        run_to_end(richardson_lucy_sv(np.ones((20, 20)), np.ones((1, 4, 4)), [(0, 20, 0, 20)], 0, 5))
    with pytest.raises(InputError):
        PsfRLParams(tv=0.5)


# -- estimator outputs and the plan -----------------------------------------------------------------------------

def test_encoded_targets_round_trip():
    t = torch.tensor([[0.0, 0.1, -0.2], [3.0, -0.5, 0.4], [9.5, 0.0, 0.0]])
    out = torch.cat([encode_targets(t), torch.zeros(3, 3)], 1)
    assert torch.allclose(decode_outputs(out)[:, :3], t, atol=1e-5)


def test_plan_leaves_small_defocus_alone_and_iterates_more_for_more_blur():
    img = blobs((64, 64))
    maps = ParameterMaps(np.full((64, 64), 0.1, np.float32), *(np.zeros((64, 64), np.float32),) * 3,
                         np.ones((64, 64), np.float32), False)
    plan = plan_plane(img, maps, OPTICS, 32, "focus")
    assert plan.act.max() == 0 and plan.iterations == 0
    assert iterations_rule(4.0, 1000) > iterations_rule(2.0, 1000) > 0
    assert iterations_rule(4.0, 3) < iterations_rule(4.0, 1000)


def test_measured_psf_file_checks(tmp_path):
    k = parametric_psf(1.0, 0, 0, OPTICS, 21)
    ok = MeasuredPsf(Stack(k[None].astype(np.float32)), 0.256)
    assert np.isclose(ok.kernel(0.0, 21).sum(), 1) and ok.kernel(0.0, 21).shape == (21, 21)
    with pytest.raises(InputError, match="not a PSF kernel"):
        MeasuredPsf(Stack(np.ones((1, 40, 90), np.float32)), 0.256)
    with pytest.raises(InputError, match="z positions"):
        MeasuredPsf(Stack(np.ones((5, 21, 21), np.float32)), 0.256)


# -- depth calibration ------------------------------------------------------------------------------------------

def _maps(z, a0, shape=(8, 8)) -> ParameterMaps:
    f = np.full(shape, 1.0, np.float32)
    return ParameterMaps(f * abs(z), f * a0, f * 0, f * 0.1, f, False)


def test_calibration_fits_scale_and_takes_the_side_from_astigmatism(tmp_path):
    z = np.arange(-6, 7) * 0.5
    # the estimate: half the distance, with a floor of 0.2 um near focus; astigmatism flips sign at focus
    est = np.stack([np.sqrt((0.5 * z) ** 2 + 0.2 ** 2), 0.3 * np.sign(z), np.zeros_like(z)], 1)
    cal = fit_calibration(z, est, 6, "widefield", OPTICS, 10.0, "given")
    assert cal.signed and cal.sign_agreement == 1.0
    assert abs(cal.scale - 4.0) < 1e-6 and cal.residual_um < 1e-6
    depth = cal.depth(_maps(np.sqrt(0.5 ** 2 + 0.2 ** 2), -0.3))  # an estimate for 1 um, on the negative side
    assert np.allclose(depth, -1.0, atol=1e-5)
    path = cal.write(tmp_path / "cal.json")
    assert DepthCalibration.read(path).sign_direction == cal.sign_direction
    no_astig = fit_calibration(z, est * [1, 0, 0], 6, "widefield", OPTICS, 10.0, "given")
    assert not no_astig.signed and np.all(no_astig.depth(_maps(1.0, -0.3)) >= 0)
    with pytest.raises(InputError, match="pixels"):
        cal.check_optics(Optics(1.2, 0.46, 1.33, 0.1))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="not a depth calibration"):
        DepthCalibration.read(tmp_path / "bad.json")


# -- the method and its commands (shipped estimator) ---------------------------------------------------------

@pytest.fixture(scope="module")
def defocused(tmp_path_factory):
    """A small widefield plane 2 um out of focus, and its in-focus version."""
    truth = blobs((96, 96), seed=5)
    planes = fft_convolve(truth, parametric_psfs(np.array([[0.0, 0, 0], [2.0, 0, 0]]), OPTICS, 41))
    rng = np.random.default_rng(1)
    noisy = rng.poisson(planes).astype(np.float32)
    folder = tmp_path_factory.mktemp("psfrl")
    path = folder / "stack.tif"
    tifffile.imwrite(path, noisy, imagej=True, resolution=(1 / 0.256, 1 / 0.256), metadata={"axes": "ZYX",
                     "unit": "um", "spacing": 2.0})
    return path, noisy


def test_restore_refocuses_a_defocused_plane(defocused):
    path, noisy = defocused
    method = load_method("psf-rl", None, "cpu")
    stack = read_stack(path)
    params = PsfRLParams(optics=(1.2, 0.46, 1.33))
    out = run(method.restore(stack, 1, params))
    assert out.image.shape == noisy[1].shape and out.image.dtype == np.float32
    assert out.info["defocus_um_median"] > 0.8 and out.info["iterations"] > 0

    def err(a):
        return float(np.mean((a - noisy[0]) ** 2))
    assert err(out.image) < err(noisy[1])  # nearer the in-focus plane than the input
    same = run(method.restore(stack, 0, params))  # the in-focus plane is left as it is
    assert "unchanged" in same.info["rule"] or err(same.image) < 1.05 * err(noisy[0] * 0 + noisy[0]) + 1e-9


def test_commands_and_bad_input(defocused, tmp_path, capsys):
    path, _ = defocused
    out = tmp_path / "map.tif"
    assert main(["blur-map", str(path), "-o", str(out), "--optics", "1.2", "0.46", "1.33"]) == 2
    assert "--plane" in capsys.readouterr().err and not out.exists()
    assert main(["blur-map", str(path), "-o", str(out), "--plane", "1", "--optics", "1.2", "0.46", "1.33"]) == 0
    maps = tifffile.imread(out)
    assert maps.shape == (3, 96, 96) and maps.dtype == np.float32 and np.median(maps[0]) > 0.8
    assert read_provenance(out)["planes"][0] == "|defocus| (um)"
    nan = tmp_path / "nan.tif"
    tifffile.imwrite(nan, np.full((32, 32), np.nan, np.float32))
    assert main(["blur-map", str(nan), "-o", str(tmp_path / "n.tif")]) == 2
    assert not (tmp_path / "n.tif").exists()
    cal = DepthCalibration("widefield", {"na": 1.2, "wavelength_um": 0.46, "n_immersion": 1.33,
                                         "pixel_size_um": 0.1}, 1.0, 0.0, None, None, 0, "given", 0.1)
    cal.write(tmp_path / "cal.json")
    assert main(["blur-map", str(path), "-o", str(tmp_path / "d.tif"), "--plane", "1", "--depth",
                 str(tmp_path / "cal.json")]) == 2
    assert "pixels" in capsys.readouterr().err and not (tmp_path / "d.tif").exists()
    bf = tmp_path / "bf.tif"
    assert main(["blur-map", str(path), "-o", str(bf), "--plane", "1", "--modality", "brightfield"]) == 2
    assert "train-psf --modality brightfield" in capsys.readouterr().err and not bf.exists()
    bad_psf = tmp_path / "psf.tif"
    tifffile.imwrite(bad_psf, np.random.default_rng(0).random((30, 80)).astype(np.float32))  # an image, not a kernel
    restored = tmp_path / "r.tif"
    assert main(["restore", str(path), "-o", str(restored), "--method", "psf-rl", "--plane", "1",
                 "--psf", str(bad_psf)]) == 2
    assert "not a PSF kernel" in capsys.readouterr().err and not restored.exists()
    assert main(["restore", str(path), "-o", str(restored), "--method", "psf-rl", "--plane", "1",
                 "--optics", "1.2 0.46 1.33"]) == 0
    assert tifffile.imread(restored).shape == (96, 96)


def test_training_resumes_and_writes_a_card(tmp_path):
    from latent_focus.methods.psf_rl.training import EstimatorTrainConfig, train_estimator
    from latent_focus.models import read_card

    content = [Stack(np.stack([blobs((64, 64), s) for s in range(3)]).astype(np.float32), source="blobs.tif")]
    cfg = EstimatorTrainConfig(samples=12, val_samples=4, steps=4, batch_size=4, checkpoint_every=2, validate_every=2)
    gen = train_estimator(content, tmp_path / "m", cfg)
    phases = []
    for p in gen:
        phases.append((p.phase, p.done))
        if p.phase == "train" and p.done == 2:
            gen.close()  # interrupted after two steps
            break
    assert ("simulate", 0) in phases and ("simulate", 16) in phases
    resumed = [(p.phase, p.done) for p in train_estimator(content, tmp_path / "m", cfg)]
    assert [d for ph, d in resumed if ph == "train"] == [3, 4]  # picks up after the checkpoint
    card = read_card(tmp_path / "m")
    assert card.preset == "psf-estimator" and card.extra["method"] == "psf-rl" and card.seed == 0
    assert card.steps_done == 4 and "val_r2_defocus_waves" in card.evaluation["validation"]
    assert not (tmp_path / "m" / "simulated").exists()
    assert list(train_estimator(content, tmp_path / "m", cfg)) == []  # done: nothing to do
    small = EstimatorTrainConfig(samples=600, val_samples=0, steps=1, batch_size=4)
    gen = train_estimator(content, tmp_path / "s", small)
    assert [next(gen).done, next(gen).done] == [0, 500]  # one chunk of 500 simulated, then stopped
    gen.close()
    first = next(train_estimator(content, tmp_path / "s", small))
    assert (first.phase, first.done) == ("simulate", 500)  # the same command picks up the simulation


def test_content_around_focus_and_its_checks():
    from latent_focus.methods.psf_rl.training import content_planes

    a = Stack(np.arange(5 * 8 * 8, dtype=np.float32).reshape(5, 8, 8), source="a.tif")
    b = Stack(np.zeros((3, 8, 8), np.float32) + 7, source="b.tif")
    planes = content_planes([a, b], [0, 1], focus_range=1)
    assert [float(p[0, 0]) for p in planes] == [0.0, 64.0, 7.0, 7.0, 7.0]  # edges clipped, one range each side
    with pytest.raises(InputError, match="out of range for a.tif"):
        content_planes([a, b], [5, 1])
    with pytest.raises(InputError, match="one plane per content stack"):
        content_planes([a, b], [2])


def test_simulated_optics_cover_the_recipe_and_small_fields_are_mirrored():
    from latent_focus.methods.psf_rl.sampling import FC0, PATCH, ZOOM_RANGE, fit_patch
    from latent_focus.methods.psf_rl.simulation import SimulationRecipe, bead_field, draw_optics

    recipe = SimulationRecipe()
    rng = np.random.default_rng(3)
    draws = [draw_optics(rng, recipe) for _ in range(400)]
    zooms = np.array([o.cutoff_px / FC0 for o in draws])
    pixels = np.array([o.pixel_size_um for o in draws])
    assert ZOOM_RANGE[0] <= zooms.min() and zooms.max() <= ZOOM_RANGE[1]
    assert recipe.pixel_um[0] <= pixels.min() < 0.08 and 0.5 < pixels.max() <= recipe.pixel_um[1]
    assert any(o.na >= 1.35 and o.pixel_size_um < 0.08 for o in draws)  # 100x oil at 65 nm is in the range
    small = np.arange(50 * 40, dtype=np.float32).reshape(50, 40)
    padded, (oy, ox) = fit_patch(small)
    assert padded.shape == (PATCH, PATCH) and np.array_equal(padded[oy:oy + 50, ox:ox + 40], small)
    assert np.array_equal(padded[oy - 1, ox:ox + 40], small[0])  # mirrored, as the estimator pads a small field
    beads = bead_field(96, np.random.default_rng(1))
    assert beads.max() == pytest.approx(1.0) and (beads == 0).mean() > 0.5


@pytest.mark.parametrize("pixel, na, n", [(0.065, 1.4, 1.515), (0.108, 1.4, 1.515), (0.1625, 0.75, 1.0),
                                           (0.325, 0.75, 1.0), (0.65, 0.3, 1.0)])
def test_unset_optics_follow_the_pixel_size(pixel, na, n):
    from latent_focus.methods.psf_rl import optics_note

    stack = Stack(np.zeros((1, 8, 8), np.float32), pixel_size_um=pixel)
    optics = optics_for(PsfRLParams(), stack)
    assert (optics.na, optics.n_immersion, optics.pixel_size_um) == (na, n, pixel)
    assert "assumed from the" in optics_note(PsfRLParams(), stack)
    given = PsfRLParams(optics=(1.2, 0.46, 1.33))
    assert optics_for(given, stack).na == 1.2 and optics_note(given, stack) is None
    unknown = optics_for(PsfRLParams(), Stack(np.zeros((1, 8, 8), np.float32)))
    assert (unknown.na, unknown.pixel_size_um) == (0.75, 0.1)


def test_method_is_registered_with_its_commands():
    cls = get_method("psf-rl")
    assert cls.input == "plane" and {c.name for c in cls.commands()} == {"train-psf", "blur-map", "calibrate-depth"}


# -- napari -----------------------------------------------------------------------------------------------------

class _Context:
    def __init__(self, viewer, stack):
        self.viewer, self._stack, self.added = viewer, stack, []

    def layer(self):
        return self.viewer.layers[0]

    def stack(self):
        return self._stack

    def current_plane(self):
        return 1

    def model(self):
        return "default"  # the panel's autoencoder: not an estimator, so the section uses the shipped one

    def device(self):
        return "cpu"

    def params(self):
        from latent_focus.methods.psf_rl import PsfRLParams
        return PsfRLParams(optics=(1.2, 0.46, 1.33))

    def run_job(self, job, on_done, what):
        on_done(run(job))

    def add_result(self, data, name, planes, metadata, colormap=None, opacity=1.0):
        self.added.append((data, name, planes, metadata, colormap))
        return self.viewer.add_image(data, name=name, colormap=colormap, opacity=opacity)


def test_napari_blur_map_button_adds_a_coloured_layer(make_napari_viewer, defocused, qtbot):
    from latent_focus.napari.sections.psf_rl import PsfRLSection

    path, noisy = defocused
    viewer = make_napari_viewer()
    viewer.add_image(noisy, name="stack")
    context = _Context(viewer, read_stack(path))
    section = PsfRLSection(context)
    qtbot.addWidget(section)
    section.button.click()
    data, name, planes, meta, cmap = context.added[-1]
    assert name == "stack blur map" and planes == [1] and cmap == "turbo" and meta["unit"] == "um"
    assert data.shape == (96, 96) and np.median(data) > 0.8
    assert viewer.layers["stack blur map"].colormap.name == "turbo"
    top = float(optics_for(context.params(), context.stack()).defocus_um(10.0))  # fixed for the optics
    assert tuple(viewer.layers["stack blur map"].contrast_limits) == pytest.approx((0.0, top))
    assert "defocus" in section.status.text()


# -- real data --------------------------------------------------------------------------------------------------

@pytest.mark.real_data
def test_estimated_defocus_follows_the_real_widefield_stack(shared_data):
    stack = read_stack(shared_data / "neubias_widefield_nucleus_hoechst" / "stack.tif")
    method = load_method("psf-rl", None, "cpu")
    planes = list(range(5, 34, 2))
    est = [float(np.median(method.blur_maps(stack.data[i], OPTICS).defocus_um)) for i in planes]
    true = np.abs(stack.z_um[planes] - stack.z_um[19])
    rho = np.corrcoef(np.argsort(np.argsort(est)), np.argsort(np.argsort(true)))[0, 1]
    assert rho > 0.8, (rho, est)


@pytest.mark.real_data
def test_psf_rl_on_brightfield_points_to_methods_that_deblur_it(shared_data, tmp_path, capsys):
    import re
    import shutil

    hela = shared_data / "brightfield_hela_set1"
    crop = tmp_path / "hela.tif"
    tifffile.imwrite(crop, read_stack(hela / "stack.tif").data[:, 384:640, 544:800], photometric="minisblack")
    shutil.copy(hela / "z.txt", tmp_path / "z.txt")
    refused = tmp_path / "refused.tif"
    assert main(["restore", str(crop), "-o", str(refused), "--method", "psf-rl", "--plane", "1",
                 "--modality", "brightfield"]) == 2
    advice = capsys.readouterr().err.strip()
    assert len(advice.splitlines()) == 1 and "blur-map" not in advice and not refused.exists(), advice
    methods = re.findall(r"--method (\S+?)[,;)]?(?:\s|$)", advice)
    assert methods == ["analysis-synthesis", "latent"], advice
    for method in methods:  # the advice works on this brightfield plane
        out = tmp_path / f"{method}.tif"
        assert main(["restore", str(crop), "-o", str(out), "--method", method, "--plane", "1"]) == 0
        assert tifffile.imread(out).shape == (256, 256)
