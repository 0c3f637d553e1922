"""The command line contract: outputs, formats, and exit code 2 with one line for every bad input."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import tifffile

from latent_focus.cli import main


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

    from latent_focus.cli import STRENGTHS

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
    assert "deblurring PSNR" in table and "LDS" in table and "identity" in table
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


def _bad(tmp_path, stack_file, tiny_model):
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
    }


CASES = ["unreadable", "not tiff", "missing", "too small", "plane range", "same plane", "alpha 0", "alpha big",
         "alpha nan", "nan", "constant", "empty", "no model", "unknown model", "exists", "bad suffix",
         "missing arg", "bad focus", "bad preset", "optics no z", "optics arity", "psf 2d", "strength",
         "strength word", "calibrate focus"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line(case, tmp_path, stack_file, tiny_model, capsys):
    args = _bad(tmp_path, stack_file, tiny_model)[case]
    with pytest.raises(SystemExit) if case == "missing arg" else _nullcontext() as exc:
        code = run(*args)
    if case == "missing arg":
        code = exc.value.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "error" in err[0] and "Traceback" not in err[0], err
    assert not (tmp_path / "o.tif").exists()
    assert (tmp_path / "exists.tif").read_bytes() == b"precious"
    assert not any(".part" in p.name for p in tmp_path.iterdir())


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_console_script_runs():
    res = subprocess.run([sys.executable, "-m", "latent_focus.cli", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "latent-focus" in res.stdout


def test_shipped_default_model_is_used_without_model(tmp_path, stack_file, capsys):
    out = tmp_path / "d.tif"
    assert run("deblur", stack_file, "-o", out, "--planes", 2, 4, "--alpha", 0.5) == 0
    assert "model default" in capsys.readouterr().err
    assert tifffile.imread(out).shape == (96, 96)
