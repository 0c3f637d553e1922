"""The command line contract: outputs, formats, and exit code 2 with one line for every bad input."""

import contextlib
import logging
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tifffile

from latent_focus.cli import main

# how plain tifffile.imwrite(path, array) stores an array of 3 or 4 planes: colour samples of one image
AS_SAMPLES = {"photometric": "rgb", "planarconfig": "separate"}


@pytest.fixture()
def stack_file(tmp_path, blurred_stack):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, blurred_stack.astype(np.uint16), photometric="minisblack")
    return path


def run(*args):
    return main([str(a) for a in args])


def test_synthesize_sweep_and_deblur(tmp_path, stack_file, tiny_model, blurred_stack):
    out = tmp_path / "sweep.tif"
    assert run("synthesize", stack_file, "-o", out, "--planes", 1, 5, "--alpha", 0.25, 0.5, 0.75,
               "--model", tiny_model, "--device", "cpu") == 0
    sweep = tifffile.imread(out)
    assert sweep.shape == (3, 96, 96) and sweep.dtype == np.float32
    # outputs are in the input's units, not the normalised range
    assert abs(float(np.median(sweep)) - float(np.median(blurred_stack))) < 0.5 * np.ptp(blurred_stack)
    one = tmp_path / "deblur.tif"
    assert run("deblur", stack_file, "-o", one, "--planes", 2, 4, "--alpha", 0.5, "--model", tiny_model) == 0
    assert tifffile.imread(one).shape == (96, 96)


def test_deblur_strength_takes_that_fraction_of_the_step(tmp_path, stack_file, tiny_model, blurred_stack):
    from latent_focus.engine import LatentFocus

    outs = {}
    for strength in ("1", "0.3", "model"):
        outs[strength] = tmp_path / f"deblur_{strength}.tif"
        assert run("deblur", stack_file, "-o", outs[strength], "--planes", 2, 4, "--alpha", 0.5,
                   "--strength", strength, "--model", tiny_model, "--device", "cpu") == 0
    engine = LatentFocus(tiny_model, "cpu")
    norm = engine.normalizer(blurred_stack.astype(np.uint16).astype(np.float32))
    zb, zc = (engine.encode(blurred_stack.astype(np.uint16)[i], norm) for i in (2, 4))
    partial = engine.decode(zb * 1.3 + zc * -0.3)  # z_b + 0.3 * (z_b/0.5 - z_c - z_b)
    full = engine.decode(zb * 2.0 + zc * -1.0)
    for name, expected, other in (("0.3", partial, full), ("1", full, partial)):
        written = tifffile.imread(outs[name])
        assert np.abs(written - expected).max() < 0.2 * np.abs(written - other).max(), name
    assert engine.strength == 1.0  # no calibration in its card: "model" is Eq. 2 itself
    assert np.array_equal(tifffile.imread(outs["model"]), tifffile.imread(outs["1"]))


def test_calibrate_writes_a_new_model_with_the_fitted_strength(tmp_path, stack_file, tiny_model, capsys):
    import json

    from latent_focus.methods.latent.commands import STRENGTHS

    before = {p.name: p.read_bytes() for p in tiny_model.iterdir()}
    out = tmp_path / "calibrated"
    assert run("calibrate", stack_file, "--focus", 0, "--model", tiny_model, "-o", out, "--device", "cpu") == 0
    printed = capsys.readouterr().out
    card = json.loads((out / "card.json").read_text())
    fit = card["deblur_strength"]
    rows = fit["by_strength"]
    assert [r["strength"] for r in rows] == STRENGTHS and fit["pairs"] == 15  # planes 1..6, every B < C
    assert fit["value"] == max(rows, key=lambda r: r["mean_gain_db"])["strength"]
    assert f"{fit['value']:.2f}" in printed and "<- best" in printed
    assert {p.name: p.read_bytes() for p in tiny_model.iterdir()} == before  # the source model is untouched
    assert run("evaluate", stack_file, "--focus", 0, "--model", out, "--max-cases", 3, "--json") == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["strength"] == fit["value"] and np.isfinite(summary["calibrated_psnr"])
    assert run("calibrate", stack_file, "--focus", 0, "--model", tiny_model, "-o", out) == 2  # exists
    assert run("calibrate", stack_file, "--focus", 0, "--model", out, "-o", out, "--overwrite") == 2  # itself
    assert json.loads((out / "card.json").read_text()) == card


def test_train_then_evaluate(tmp_path, stack_file, capsys):
    model = tmp_path / "model"
    assert run("train", stack_file, "-o", model, "--preset", "tiny", "--steps", 3, "--crop", 64,
               "--batch-size", 2, "--device", "cpu", "--relative-latent") == 0
    import json
    card = json.loads((model / "card.json").read_text())
    assert card["training"]["recipe"]["relative_latent"] is True
    assert run("evaluate", stack_file, "--focus", 0, "--model", model, "--max-cases", 3) == 0
    table = capsys.readouterr().out
    assert "default rule (--strength auto)" in table and "LDS" in table and "identity" in table
    assert run("evaluate", stack_file, "--focus", 0, "--model", model, "--max-cases", 2, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["deblur_cases"] >= 1 and np.isfinite(report["summary"]["lds"])


def _gaussian_psf_stack(sigmas) -> np.ndarray:
    """A PSF z-stack whose plane j is a unit-sum Gaussian of width sigmas[j] px (a delta for 0)."""
    yy, xx = np.mgrid[-16:17, -16:17]
    planes = []
    for s in sigmas:
        k = np.zeros((33, 33)) if s == 0 else np.exp(-(yy ** 2 + xx ** 2) / (2.0 * s * s))
        k[16, 16] += s == 0
        planes.append(k / k.sum())
    return np.stack(planes).astype(np.float32)


def test_evaluate_richardson_lucy_column(tmp_path, stack_file, tiny_model, capsys):
    # blurred_stack plane s is the sharp image under a Gaussian of width s px: the matching PSF stack
    # (focus at plane 6, same sampling) must let Richardson-Lucy beat the blurred plane itself
    psf = tmp_path / "psf.tif"
    tifffile.imwrite(psf, _gaussian_psf_stack(np.abs(np.arange(13) - 6)), photometric="minisblack")
    assert run("evaluate", stack_file, "--focus", 0, "--model", tiny_model, "--psf", psf, "--max-cases", 4) == 0
    assert "Richardson-Lucy" in capsys.readouterr().out
    assert run("evaluate", stack_file, "--focus", 0, "--model", tiny_model, "--psf", psf, "--max-cases", 4,
               "--json") == 0
    import json
    rows = json.loads(capsys.readouterr().out)["stacks"][0]["deblur"]
    assert rows and all(r["rl_psnr"] > r["identity_psnr"] + 1.0 for r in rows), rows


def _bad(tmp_path, stack_file, tiny_model, blurred_stack):
    tifffile.imwrite(tmp_path / "nan.tif", np.full((3, 32, 32), np.nan, np.float32), photometric="minisblack")
    tifffile.imwrite(tmp_path / "const.tif", np.ones((3, 32, 32), np.float32), photometric="minisblack")
    with warnings.catch_warnings():  # a zero-size plane is exactly the bad input under test
        warnings.simplefilter("ignore")
        tifffile.imwrite(tmp_path / "empty.tif", np.zeros((3, 0, 32), np.float32), photometric="minisblack")
    tifffile.imwrite(tmp_path / "flat2d.tif", np.random.rand(4, 5).astype(np.float32))
    (tmp_path / "text.tif").write_text("hello")
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "exists.tif").write_bytes(b"precious")
    (tmp_path / "nomodel").mkdir()
    out = ["-o", tmp_path / "o.tif"]
    m = ["--model", tiny_model]
    return {
        "unreadable": ["deblur", tmp_path / "text.tif", *out, "--planes", 0, 1, "--alpha", 0.5, *m],
        "not tiff": ["deblur", tmp_path / "img.png", *out, "--planes", 0, 1, "--alpha", 0.5, *m],
        "missing": ["deblur", tmp_path / "nope.tif", *out, "--planes", 0, 1, "--alpha", 0.5, *m],
        "too small": ["deblur", tmp_path / "flat2d.tif", *out, "--planes", 0, 0, "--alpha", 0.5, *m],
        "plane range": ["deblur", stack_file, *out, "--planes", 1, 99, "--alpha", 0.5, *m],
        "same plane": ["synthesize", stack_file, *out, "--planes", 1, 1, "--alpha", 0.5, *m],
        "alpha 0": ["deblur", stack_file, *out, "--planes", 1, 3, "--alpha", 0, *m],
        "alpha big": ["synthesize", stack_file, *out, "--planes", 1, 3, "--alpha", 1.5, *m],
        "alpha nan": ["synthesize", stack_file, *out, "--planes", 1, 3, "--alpha", "nan", *m],
        "nan": ["deblur", tmp_path / "nan.tif", *out, "--planes", 0, 1, "--alpha", 0.5, *m],
        "constant": ["deblur", tmp_path / "const.tif", *out, "--planes", 0, 1, "--alpha", 0.5, *m],
        "empty": ["deblur", tmp_path / "empty.tif", *out, "--planes", 0, 1, "--alpha", 0.5, *m],
        "no model": ["deblur", stack_file, *out, "--planes", 1, 3, "--alpha", 0.5, "--model", tmp_path / "nomodel"],
        "unknown model": ["deblur", stack_file, *out, "--planes", 1, 3, "--alpha", 0.5, "--model", "nonesuch"],
        "exists": ["deblur", stack_file, "-o", tmp_path / "exists.tif", "--planes", 1, 3, "--alpha", 0.5, *m],
        "bad suffix": ["deblur", stack_file, "-o", tmp_path / "o.png", "--planes", 1, 3, "--alpha", 0.5, *m],
        "missing arg": ["deblur", stack_file, *out, "--alpha", 0.5],
        "bad focus": ["evaluate", stack_file, "--focus", 40, *m],
        "bad preset": ["train", stack_file, "-o", tmp_path / "m2", "--preset", "huge", "--steps", 1],
        "optics no z": ["evaluate", stack_file, "--focus", 0, "--optics", 0.75, 0.55, *m],
        "optics arity": ["evaluate", stack_file, "--focus", 0, "--optics", 0.75, *m],
        "psf 2d": ["evaluate", stack_file, "--focus", 0, "--psf", tmp_path / "flat2d.tif", *m],
        "strength": ["deblur", stack_file, *out, "--planes", 1, 3, "--alpha", 0.5, "--strength", 1.5, *m],
        "strength word": ["deblur", stack_file, *out, "--planes", 1, 3, "--alpha", 0.5, "--strength", "max", *m],
        "calibrate focus": ["calibrate", stack_file, "--focus", 0, 1, "-o", tmp_path / "m3", *m],
        "tile 0": ["deblur", stack_file, *out, "--planes", 1, 3, "--tile", 0, *m],
        "tile 10": ["synthesize", stack_file, *out, "--planes", 1, 3, "--alpha", 0.5, "--tile", 10, *m],
        "tile -5": ["restore", stack_file, *out, "--method", "latent", "--plane", 1, "--tile", -5, *m],
        "pickle model": ["deblur", stack_file, *out, "--planes", 1, 3, "--model", _pickled_model(tmp_path)],
        "negative plane": ["deblur", stack_file, *out, "--planes", -1, 2, *m],
        "negative --plane": ["restore", stack_file, *out, "--method", "richardson-lucy", "--plane", -1],
        "max-cases 0": ["evaluate", stack_file, "--focus", 0, "--max-cases", 0, *m],
        "output is input": ["deblur", tmp_path / "exists.tif", "-o", tmp_path / "exists.tif", "--planes", 1, 3,
                            "--overwrite", *m],
        "unknown method": ["restore", stack_file, *out, "--method", "magic"],
        "pair method, 2-D": ["restore", tmp_path / "flat2d.tif", *out, "--method", "latent", *m],
        "plane method with --planes": ["restore", stack_file, *out, "--method", "richardson-lucy", "--planes", 1, 2],
        "method option range": ["restore", stack_file, *out, "--method", "richardson-lucy", "--iterations", -3],
        "unknown --method in evaluate": ["evaluate", stack_file, "--focus", 0, "--method", "magic", *m],
        "view nan": ["view", tmp_path / "nan.tif"],
        "view screenshot exists": ["view", stack_file, "--screenshot", _png(tmp_path)],
        "channel of a (z, y, x) file": ["deblur", stack_file, *out, "--planes", 2, 4, "--channel", 1, *m],
        "channel of a (z, y, x) file, restore": ["restore", stack_file, *out, "--method", "richardson-lucy",
                                                 "--channel", 1],
        "3 planes stored as colour samples": ["deblur", _samples(tmp_path, 3), *out, "--planes", 1, 2, *m],
        "4 planes stored as colour samples": ["restore", _samples(tmp_path, 4), *out, "--method", "latent", *m],
        "axes of another file": ["deblur", stack_file, *out, "--planes", 1, 2, "--axes", "zcyx", *m],
        "axes letters": ["restore", stack_file, *out, "--method", "richardson-lucy", "--axes", "tyx"],
        "deblur, 2-D": ["deblur", _plane(tmp_path, blurred_stack), *out, "--planes", 0, 1, *m],
        "synthesize, 2-D": ["synthesize", _plane(tmp_path, blurred_stack), *out, "--planes", 0, 1, "--alpha", 0.5, *m],
        "truncated TIFF": ["deblur", _truncated(tmp_path, blurred_stack), *out, "--planes", 1, 2, *m],
        "truncated TIFF, restore": ["restore", _truncated(tmp_path, blurred_stack), *out, "--method",
                                    "richardson-lucy"],
        "truncated TIFF, view": ["view", _truncated(tmp_path, blurred_stack), "--screenshot", tmp_path / "v.png"],
        "huge TIFF": ["deblur", _huge(tmp_path), *out, "--planes", 1, 2, *m],
        "huge TIFF, view": ["view", _huge(tmp_path), "--screenshot", tmp_path / "v.png"],
        "pickled weights file": ["deblur", stack_file, *out, "--planes", 1, 3, "--model", _raw_pickle_model(tmp_path)],
    }


CASES = ["unreadable", "not tiff", "missing", "too small", "plane range", "same plane", "alpha 0", "alpha big",
         "alpha nan", "nan", "constant", "empty", "no model", "unknown model", "exists", "bad suffix",
         "missing arg", "bad focus", "bad preset", "optics no z", "optics arity", "psf 2d", "strength",
         "strength word", "calibrate focus", "tile 0", "tile 10", "tile -5", "pickle model", "negative plane",
         "negative --plane", "max-cases 0", "output is input", "unknown method", "pair method, 2-D",
         "plane method with --planes", "method option range", "unknown --method in evaluate", "view nan",
         "view screenshot exists", "channel of a (z, y, x) file", "channel of a (z, y, x) file, restore",
         "3 planes stored as colour samples", "4 planes stored as colour samples", "axes of another file",
         "axes letters", "deblur, 2-D", "synthesize, 2-D", "truncated TIFF", "truncated TIFF, restore",
         "truncated TIFF, view", "huge TIFF", "huge TIFF, view", "pickled weights file"]


def _samples(tmp_path, n: int):
    """A stack of ``n`` planes written by plain ``tifffile.imwrite``: stored as ``n`` colour samples per pixel."""
    path = tmp_path / f"samples{n}.tif"
    data = np.random.default_rng(n).random((n, 32, 32)).astype(np.float32)
    tifffile.imwrite(path, data * np.arange(1, n + 1)[:, None, None], **AS_SAMPLES)
    return path


def _plane(tmp_path, blurred_stack):
    path = tmp_path / "plane.tif"
    tifffile.imwrite(path, blurred_stack[2].astype(np.uint16))
    return path


def _truncated(tmp_path, blurred_stack):
    """A 7-plane ImageJ stack cut in half: tifffile still finds its first plane."""
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, blurred_stack.astype(np.uint16), imagej=True, metadata={"axes": "ZYX"})
    path = tmp_path / "truncated.tif"
    path.write_bytes(full.read_bytes()[:full.stat().st_size // 2])
    full.unlink()
    return path


def _huge(tmp_path):
    """A TIFF whose header claims a plane of 2**31 - 1 by 2**31 - 1 pixels."""
    import struct

    path = tmp_path / "huge.tif"
    tifffile.imwrite(path, np.ones((16, 16), np.uint16))
    with tifffile.TiffFile(path) as tif:
        offsets = [tif.pages[0].tags[name].valueoffset for name in ("ImageWidth", "ImageLength")]
    data = bytearray(path.read_bytes())
    for offset in offsets:
        data[offset:offset + 4] = struct.pack("<I", 2 ** 31 - 1)
    path.write_bytes(bytes(data))
    return path


def _png(tmp_path):
    path = tmp_path / "shot.png"
    path.write_bytes(b"a screenshot kept by the user")
    return path


def _pickled_model(tmp_path):
    """A model folder whose weights file is a pickle that would run code if it were unpickled."""
    import shutil

    import torch

    from latent_focus.models import ModelCard, build_model, save_model

    folder = tmp_path / "pickled"
    save_model(folder, build_model("tiny"), ModelCard(preset="tiny"))
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (shutil.copyfile, (str(folder / "card.json"), str(marker)))

    torch.save({"x": Payload()}, folder / "weights.pt")
    card = ModelCard.read(folder)
    card.weights_sha256 = ""
    card.write(folder)
    return folder


def _raw_pickle_model(tmp_path):
    """A model folder whose weights file is a plain pickle (not torch.save's zip) of an object that runs code."""
    import pickle
    import shutil

    folder = tmp_path / "raw-pickle"
    shutil.copytree(_pickled_model(tmp_path), folder)

    class Payload:
        def __reduce__(self):
            return (shutil.copyfile, (str(folder / "card.json"), str(tmp_path / "code-ran")))

    (folder / "weights.pt").write_bytes(pickle.dumps({"x": Payload()}))
    return folder


@contextlib.contextmanager
def _console(caplog):
    """What a terminal shows beside stderr: warnings under Python's default filters, and log records of
    WARNING and above (Python prints those itself when no logging is configured)."""
    shown = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        with caplog.at_level(logging.WARNING):
            yield shown
    shown += [str(w.message).splitlines()[0] for w in caught]
    shown += [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line(case, tmp_path, stack_file, tiny_model, blurred_stack, capsys, caplog):
    args = _bad(tmp_path, stack_file, tiny_model, blurred_stack)[case]
    capsys.readouterr()
    with _console(caplog) as shown:
        try:
            code = run(*args)
        except SystemExit as exc:  # argparse's own one-line errors
            code = exc.code
    err = shown + capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "error" in err[0] and "Traceback" not in err[0], err
    assert "weights_only" not in err[0]
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "v.png").exists()
    assert not (tmp_path / "code-ran").exists()  # a pickled model never runs
    assert (tmp_path / "exists.tif").read_bytes() == b"precious"
    assert not (tmp_path / "shot.png").exists() or (tmp_path / "shot.png").read_bytes().startswith(b"a screenshot")
    assert not any(".part" in p.name for p in tmp_path.iterdir())


def test_console_script_runs():
    res = subprocess.run([sys.executable, "-m", "latent_focus.cli", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "latent-focus" in res.stdout


def test_shipped_default_model_is_used_without_model(tmp_path, stack_file):
    from latent_focus.io import read_provenance

    out = tmp_path / "d.tif"
    assert run("deblur", stack_file, "-o", out, "--planes", 2, 4, "--alpha", 0.5) == 0
    assert read_provenance(out)["model"] == "default"
    assert tifffile.imread(out).shape == (96, 96)


def test_output_tiffs_carry_provenance(tmp_path, tiny_model):
    from latent_focus import __version__
    from latent_focus.io import read_provenance, read_stack

    src = tmp_path / "zstack.tif"
    data = (np.random.default_rng(0).random((5, 40, 40)) * 1000).astype(np.uint16)
    tifffile.imwrite(src, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"spacing": 0.5, "unit": "um", "axes": "ZYX"})
    out = tmp_path / "restored.tif"
    assert run("restore", src, "-o", out, "--method", "latent", "--model", tiny_model, "--strength", 0.5) == 0
    info = read_provenance(out)
    assert info["software"] == f"napari-latent-focus {__version__}" and info["method"] == "latent"
    assert info["model"] == "tiny" or info["model"].endswith("tiny")
    assert info["parameters"]["strength"] == "0.5" and len(info["planes"]) == 5
    assert all("rule" in p and p["method"] == "latent" for p in info["planes"])
    assert any("alpha" in p and len(p["planes"]) == 2 for p in info["planes"])
    assert info["pixel_size_um"] == pytest.approx(0.25) and info["z_um"] == pytest.approx([0, 0.5, 1, 1.5, 2])
    back = read_stack(out)
    assert back.pixel_size_um == pytest.approx(0.25) and back.z_um[1] == pytest.approx(0.5)


def test_no_command_writes_over_its_input(tmp_path, stack_file, tiny_model):
    before = stack_file.read_bytes()
    for args in (["deblur", stack_file, "-o", stack_file, "--planes", 1, 3, "--overwrite"],
                 ["synthesize", stack_file, "-o", stack_file, "--planes", 1, 3, "--alpha", 0.5, "--overwrite"],
                 ["restore", stack_file, "-o", stack_file, "--method", "latent", "--overwrite"]):
        assert run(*args, "--model", tiny_model) == 2
    assert stack_file.read_bytes() == before


def test_repeated_training_says_the_model_is_already_trained(tmp_path, stack_file, capsys):
    model = tmp_path / "model"
    args = ("train", stack_file, "-o", model, "--preset", "tiny", "--steps", 2, "--crop", 64, "--batch-size", 2,
            "--device", "cpu")
    assert run(*args) == 0
    capsys.readouterr()
    assert run(*args) == 0
    err = capsys.readouterr().err
    assert "already trained" in err and str(model) in err


def test_restore_and_deblur_write_the_same_file(tmp_path, stack_file, tiny_model):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    assert run("deblur", stack_file, "-o", a, "--planes", 2, 3, "--alpha", 0.4, "--model", tiny_model) == 0
    assert run("restore", stack_file, "-o", b, "--method", "latent", "--planes", 2, 3, "--alpha", 0.4,
               "--model", tiny_model) == 0
    assert np.array_equal(tifffile.imread(a), tifffile.imread(b))


def test_methods_lists_latent_and_richardson_lucy(capsys):
    assert run("methods") == 0
    out = capsys.readouterr().out
    for name in ("latent", "richardson-lucy"):
        assert name in out
    assert "pair of planes" in out and "single plane" in out


def test_restore_with_richardson_lucy(tmp_path, stack_file, blurred_stack):
    out = tmp_path / "rl.tif"
    assert run("restore", stack_file, "-o", out, "--method", "richardson-lucy", "--plane", 3, "--iterations", 5,
               "--tile", 48, "--overlap", 8) == 0
    restored = tifffile.imread(out)
    assert restored.shape == (96, 96) and restored.dtype == np.float32
    every = tmp_path / "rl_all.tif"
    assert run("restore", stack_file, "-o", every, "--method", "richardson-lucy", "--iterations", 2) == 0
    assert tifffile.imread(every).shape == (7, 96, 96)


@pytest.mark.parametrize("n", [3, 4])
def test_axes_zyx_reads_a_stack_stored_as_colour_samples(tmp_path, blurred_stack, tiny_model, capsys, n):
    path = tmp_path / "few.tif"
    tifffile.imwrite(path, blurred_stack[:n], **AS_SAMPLES)
    out = tmp_path / "deblurred.tif"
    assert run("deblur", path, "-o", out, "--planes", 1, 2, "--axes", "zyx", "--model", tiny_model) == 0
    assert tifffile.imread(out).shape == (96, 96)
    every = tmp_path / "every.tif"
    assert run("restore", path, "-o", every, "--method", "latent", "--axes", "zyx", "--model", tiny_model) == 0
    assert tifffile.imread(every).shape == (n, 96, 96)
    assert run("deblur", path, "-o", tmp_path / "refused.tif", "--planes", 1, 2, "--model", tiny_model) == 2
    assert "--axes zyx" in capsys.readouterr().err


READING_COMMANDS = {  # every command that reads an image file, with the arguments it needs before --axes
    "restore": ["in.tif", "-o", "o.tif", "--method", "latent"],
    "batch": ["in.tif", "-o", "out", "--method", "latent"],
    "synthesize": ["in.tif", "-o", "o.tif", "--planes", "1", "2", "--alpha", "0.5"],
    "deblur": ["in.tif", "-o", "o.tif", "--planes", "1", "2"],
    "train": ["in.tif", "-o", "m"],
    "adapt": ["in.tif", "-o", "m"],
    "evaluate": ["in.tif", "--focus", "0"],
    "calibrate": ["in.tif", "--focus", "0", "-o", "m"],
    "blur-map": ["in.tif", "-o", "o.tif"],
    "calibrate-depth": ["in.tif", "-o", "c.json"],
    "train-psf": ["in.tif", "-o", "m"],
    "train-analysis-synthesis": ["-o", "m", "--content", "in.tif"],
    "blur-code-score": ["in.tif", "--focus", "0"],
    "view": ["in.tif"],
}


@pytest.mark.parametrize("command", READING_COMMANDS)
def test_every_command_that_reads_a_file_takes_axes(command):
    from latent_focus.cli import build_parser

    method = "latent" if "--method" in READING_COMMANDS[command] else None
    args = build_parser(method).parse_args([command, *READING_COMMANDS[command], "--axes", "zyx"])
    assert args.axes == "ZYX"


@pytest.mark.parametrize("command", [["deblur", "--planes", 0, 1], ["synthesize", "--planes", 0, 1, "--alpha", 0.5],
                                     ["restore", "--method", "latent"]])
def test_pair_commands_on_one_plane_name_the_single_plane_methods(tmp_path, blurred_stack, tiny_model, capsys,
                                                                   command):
    name, *options = command
    assert run(name, _plane(tmp_path, blurred_stack), "-o", tmp_path / "o.tif", *options, "--model", tiny_model) == 2
    err = capsys.readouterr().err
    assert "needs a z-stack of at least two planes" in err and "plane.tif holds one plane" in err, err
    assert "latent-focus restore --method psf-rl|analysis-synthesis" in err


def test_models_prints_columns_that_never_run_together(capsys):
    import re

    assert run("models") == 0
    rows = capsys.readouterr().out.splitlines()[:-1]
    assert rows and "analysis-synthesisstrength" not in "\n".join(rows)
    for row in rows:
        assert re.match(r"^\S+ {2,}\S+ {2,}strength \d\.\d\d {2,}\S", row), row


def test_methods_says_no_blur_code_model_ships(capsys):
    assert run("methods") == 0
    out = capsys.readouterr().out
    assert "shipped 'disentangled'" not in out
    weights = out.split("blur-code", 1)[1].splitlines()[1]
    assert "none ships" in weights and "--preset disentangled" in weights, weights


def test_pixel_sizes_print_with_four_significant_digits(tmp_path, blurred_stack, capsys):
    src = tmp_path / "px.tif"
    pixel = 0.25593890905173833
    tifffile.imwrite(src, blurred_stack[:2].astype(np.uint16), imagej=True, resolution=(1 / pixel, 1 / pixel),
                     metadata={"axes": "ZYX", "unit": "um"})
    assert run("restore", src, "-o", tmp_path / "o.tif", "--method", "richardson-lucy", "--plane", 0,
               "--iterations", 1, "--optics", "0.75 0.52") == 0
    err = capsys.readouterr().err
    assert "0.2559 um pixels" in err and "0.25593890905173833" not in err, err


def test_evaluate_leads_with_the_default_rule_and_names_it(tmp_path, stack_file, tiny_model, capsys):
    import json
    import shutil

    from latent_focus.io import Normalizer, read_stack
    from latent_focus.methods import load_method
    from latent_focus.metrics import psnr

    calibrated = tmp_path / "calibrated"
    shutil.copytree(tiny_model, calibrated)
    card = json.loads((calibrated / "card.json").read_text())
    (calibrated / "card.json").write_text(json.dumps({**card, "deblur_strength": {"value": 0.4}}))
    assert run("evaluate", stack_file, "--focus", 0, "--model", calibrated, "--max-cases", 3) == 0
    table = capsys.readouterr().out
    summary = table[table.index("medians"):]
    lines = [line for line in summary.splitlines()[1:] if line.strip()]
    assert lines[0].startswith("default rule (--strength auto)"), summary
    assert lines[1].startswith("Eq. 2 (--strength 1)") and lines[2].startswith("calibrated strength"), summary
    head = table[:table.index("medians")]
    assert head.index("rule PSNR") < head.index("Eq2 PSNR"), head  # in every case row too

    assert run("evaluate", stack_file, "--focus", 0, "--model", calibrated, "--max-cases", 3, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    rule = report["default_rule"]
    assert rule["name"] == "auto" and rule["cases"] == report["summary"]["deblur_cases"] == 3
    # each case's default-rule score is what restore --method latent gives for that pair
    stack = read_stack(stack_file)
    method = load_method("latent", str(calibrated), "cpu")
    norm = Normalizer.from_data(stack.data, method.engine.card.percentiles)
    for row in report["stacks"][0]["deblur"]:
        restored = run_method(method, stack, row)  # row["alpha"] is rounded to 4 digits
        assert row["auto_psnr"] == pytest.approx(psnr(norm.normalize(stack.data[0]), norm.normalize(restored.image)),
                                                 abs=0.05)
        assert row["auto_rule"] == restored.info["rule"]
    gains = [r["auto_psnr"] - r["identity_psnr"] for r in report["stacks"][0]["deblur"]]
    assert rule["gain_over_identity_db"] == pytest.approx(float(np.median(gains)))


def run_method(method, stack, row):
    from latent_focus.methods import run as drive
    from latent_focus.methods.latent import LatentParams

    return drive(method.restore(stack, row["B"], LatentParams(alpha=row["alpha"]), partner=row["C"]))
