"""Benchmark and data scripts: bench.py JSON keys; the real-data benchmark's columns, summaries, training check
and adaptation split; step_sweep.py agrees with evaluate; bad input refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def test_bench_quick_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--presets", "tiny", "--sizes", "256",
         "--device", "cpu", "--json", str(out)],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| device | preset | case |" in proc.stdout

    report = json.loads(out.read_text())
    for key in ("schema", "date", "command", "host", "config", "reference", "results", "total_wall_s", "table"):
        assert key in report, key
    assert report["config"]["presets"] == ["tiny"]
    assert report["config"]["sizes"] == [256]
    assert {"torch", "cpu", "torch_threads", "cuda"} <= set(report["host"])

    rows = {(r["device"], r["case"], r["size"]): r for r in report["results"]}
    assert set(rows) == {("cpu", "encode", 256), ("cpu", "decode", 256), ("cpu", "train", 128),
                         ("cpu", "engine_deblur", 256)}
    for r in rows.values():
        assert r["preset"] == "tiny"
        assert r["status"] == "ok", r.get("note")
        assert r["repeats"] >= 3 and len(r["times_s"]) == r["repeats"]
        assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["peak_mem_mib"] is None or r["peak_mem_mib"] >= 0
        assert r["mem_method"]
    for case in ("encode", "decode", "engine_deblur"):
        r = rows[("cpu", case, 256)]
        assert abs(r["mpix_per_s"] - 256 * 256 / 1e6 / r["median_s"]) < 1e-6
    assert abs(rows[("cpu", "train", 128)]["steps_per_s"] * rows[("cpu", "train", 128)]["median_s"] - 1) < 1e-9


def test_step_sweep_agrees_with_evaluate(tiny_model, blurred_stack):
    """The sweep's Eq. 2 and calibrated gains are evaluate's, and its best step is the best of its grid."""
    sys.path.insert(0, str(BENCH.parent))
    try:
        import step_sweep
    finally:
        sys.path.remove(str(BENCH.parent))
    from latent_focus.engine import LatentFocus
    from latent_focus.io import Stack
    from latent_focus.methods.latent.evaluation import evaluate_stack

    engine = LatentFocus(tiny_model, "cpu")
    engine.strength = 0.4  # as a calibrated card would set it
    stack = Stack(blurred_stack[:5], None, None, blurred_stack.dtype, "blobs")
    rows = step_sweep.sweep(engine, "blobs", stack, 0, fixed=(0.0, 0.3))
    report = evaluate_stack(engine, stack, 0)
    assert [(r["B"], r["C"]) for r in rows] == [(r["B"], r["C"]) for r in report.deblur]
    for sweep_row, eval_row in zip(rows, report.deblur):
        assert sweep_row["eq2"] == pytest.approx(eval_row["psnr"] - eval_row["identity_psnr"], abs=1e-4)
        calibrated = eval_row["calibrated_psnr"] - eval_row["identity_psnr"]
        assert sweep_row["calibrated"] == pytest.approx(calibrated, abs=1e-4)
        assert sweep_row["best"] >= sweep_row["reconstruction"]
        # a constant step of 0 is the reconstruction of B; 0.3 is on the grid, so the best is at least as good
        assert sweep_row["k = 0"] == pytest.approx(sweep_row["reconstruction"], abs=1e-9)
        assert sweep_row["best"] >= sweep_row["k = 0.3"] - 1e-9
    text = step_sweep.table(rows, engine.strength, (0.0, 0.3))
    assert "median gain: k = 0.3" in text and "mean gain: k = 0.3" in text
    mean_all = [line for line in text.splitlines() if line.startswith("| all | 6 |")][-1]
    assert f"{np.mean([r['eq2'] for r in rows]):+.2f} dB" == mean_all.split(" | ")[2]


@pytest.mark.parametrize("script, args, message", [
    ("step_sweep.py", ["nosuch"], "no model 'nosuch'"),
    ("step_sweep.py", ["default", "--sim", "{tmp}"], "no recipe.json there"),
    ("step_sweep.py", ["default", "--data", "{tmp}"], "bead_widefield_epfl"),
    ("evaluate_models.py", ["nosuch"], "no model 'nosuch'"),
    ("evaluate_models.py", ["default", "--data", "{tmp}"], "neubias_widefield_nucleus_hoechst"),
    ("evaluate_models.py", ["default", "--leave-out", "nosuch=default"], "--leave-out takes NAME=MODEL"),
    ("evaluate_models.py", ["default", "--strengths", "1.5"], "each is a fraction in (0, 1]"),
])
def test_benchmark_scripts_refuse_bad_input_in_one_line(tmp_path, script, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run([sys.executable, str(BENCH.parent / script), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr.splitlines()[-1]


def _script(name: str):
    """A script of benchmarks/ imported as a module."""
    import importlib

    sys.path.insert(0, str(BENCH.parent))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH.parent))


def test_latent_columns_are_what_the_latent_method_returns(tiny_model, blurred_stack):
    """Each latent column of the benchmark is the latent method's own result for that pair and setting."""
    from latent_focus.io import Stack
    from latent_focus.methods import load_method, run
    from latent_focus.methods.latent import LatentParams, StackJob
    from latent_focus.methods.latent.evaluation import latent_cases
    from latent_focus.metrics import psnr

    stack = Stack(blurred_stack, None, None, blurred_stack.dtype, "blobs")
    method = load_method("latent", str(tiny_model), "cpu")
    images = {}

    def score(b, image):
        images.setdefault(b, []).append(image)
        return {"psnr": psnr(stack.data[0], image), "ssim": 0.0}

    rows = latent_cases(method, stack, 0, [(2, 4), (1, 2)], strengths=(0.3,), score=score)
    assert [(r["B"], r["C"]) for r in rows] == [(2, 4), (1, 2)] and "auto_rule" in rows[0]
    names = ["identity", "pixel", "auto", "model", "model+res", "eq2", "eq2+res", "recon", "s0.3", "s0.3+res"]
    assert [k[:-5] for k in rows[0] if k.endswith("_psnr")] == names
    job = StackJob(method.engine, stack, LatentParams(), focus=0)
    for row, (b, c) in zip(rows, [(2, 4), (1, 2)]):
        got = dict(zip(names, images[b][-len(names):]))
        alpha = row["alpha"]
        assert alpha == pytest.approx(1 - b / c, abs=1e-4)
        for name, setting in (("auto", "auto"), ("model", "model"), ("eq2", "1"), ("s0.3", "0.3")):
            restored = run(method.restore(stack, b, LatentParams(alpha=alpha, strength=setting), partner=c))
            if name != "auto":  # the method's own focus finding does not change an explicit alpha
                np.testing.assert_allclose(got[name], restored.image, rtol=1e-5, atol=1e-3)
        recon = job.reconstruction(b)
        np.testing.assert_allclose(got["recon"], recon, rtol=1e-5, atol=1e-3)
        for name in ("model", "eq2", "s0.3"):
            np.testing.assert_allclose(got[f"{name}+res"], stack.data[b] + got[name] - recon, rtol=1e-5, atol=1e-2)
        np.testing.assert_allclose(got["identity"], stack.data[b])


def test_summary_gives_medians_worst_pair_and_losses():
    em = _script("evaluate_models")
    rows = [{"series": "s", "B": b, "C": b + 1, "identity_psnr": 20.0, "identity_ssim": 0.5,
             "auto_psnr": 20.0 + g, "auto_ssim": 0.5 + g / 100} for b, g in enumerate([1.0, -0.5, 2.0, 0.1])]
    summ = em.summary(rows)
    assert summ["auto"]["gain_db"] == pytest.approx(0.55) and summ["auto"]["worst_gain_db"] == pytest.approx(-0.5)
    assert summ["auto"]["worst_pair"] == "s B=1 C=2" and summ["auto"]["losing"] == 1
    assert summ["auto"]["ssim_gain"] == pytest.approx(0.0055) and summ["identity"]["psnr"] == 20.0
    table = em.format_summary("test", summ)
    assert "| auto | 4 | 20.55 | 0.506 | +0.55 dB | +0.006 | -0.50 dB (s B=1 C=2) | 1 |" in table


def test_training_data_and_adaptation_split(tiny_model, blurred_stack):
    from latent_focus.io import Stack

    em = _script("evaluate_models")
    assert em._sha(blurred_stack) in em.trained_on(str(tiny_model))
    series = em.Series("many", "f", "widefield", 10)
    many = Stack(np.repeat(blurred_stack, 3, axis=0)[:21], None, None, np.float32, "many")
    split = em.adapt_split(em.Loaded(series, many, 10, None, "planes", many, 10, 1.0))
    assert split["protocol"] == "planes" and split["scored_B"] == [8, 9, 11, 12]
    assert split["adapt_planes"] == [*range(0, 8), *range(13, 21)] and split["rows"] is None
    few = Stack(np.concatenate([blurred_stack[:6]] * 1), None, None, np.float32, "few")
    split = em.adapt_split(em.Loaded(series, few, 3, None, "planes", few, 3, 1.0))
    assert split["protocol"] == "halves" and split["rows"] == (0, 48) and 3 not in split["adapt_planes"]


def test_adapt_series_scores_the_left_out_planes_before_and_after(tiny_model, blurred_stack, tmp_path):
    from latent_focus.io import Stack

    em = _script("evaluate_models")
    stack = Stack(blurred_stack, None, None, blurred_stack.dtype, "blobs")
    loaded = em.Loaded(em.Series("blobs", "f", "widefield", 0), stack, 0, None, "planes", stack, 0, 1.0)
    result = em.adapt_series(loaded, str(tiny_model), 0.01, "cpu", tmp_path)
    assert result["protocol"] == "planes" and result["adapt_planes"] == [3, 4, 5, 6]
    assert result["scored_B"] == [1, 2] and result["pairs"] == 9  # B = 1 with C = 2..6, B = 2 with C = 3..6
    assert result["steps"] >= 1 and {r["B"] for r in result["rows_after"]} == {1, 2}
    assert result["before"]["identity"]["psnr"] == result["after"]["identity"]["psnr"]
    assert result["before"]["auto"]["psnr"] != result["after"]["auto"]["psnr"]
    assert "| blobs | planes | all but the 3 planes nearest focus |" in em.format_adapt([result], 0.01)


def test_step_direction_rows(tiny_model, blurred_stack):
    from latent_focus.engine import LatentFocus
    from latent_focus.io import Stack

    step_direction = _script("step_direction")
    rows = step_direction.directions(LatentFocus(tiny_model, "cpu"), "blobs", Stack(blurred_stack[:4]), 0)
    assert [(r["B"], r["C"]) for r in rows] == [(1, 2), (1, 3), (2, 3)]
    assert all(-1 <= r["correlation"] <= 1 and r["coarse_B"] > 0 and 0 <= r["scale"] <= 1.2 for r in rows)
    assert all(r["scale_gain"] >= -1e-5 for r in rows)  # a factor of 1 (B as it is, up to rounding) is tried
    assert step_direction.coarse_contrast(np.ones((32, 32))) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.real_data
def test_benchmark_scores_real_series_and_refuses_stacks_the_model_saw(shared_data, tmp_path):
    """Plane units where the spacing is unknown; a stack in a model's training data only in a leave-out run."""
    from latent_focus.io import read_stack
    from latent_focus.methods.latent.training import TrainConfig, train

    yeast = read_stack(shared_data / "baby_brightfield_yeast_evolve_testA" / "stack.tif")
    seen = tmp_path / "seen"
    for _ in train([yeast], seen, TrainConfig(preset="tiny", steps=1, batch_size=1, crop=64, device="cpu",
                                               val_fraction=0.0)):
        pass
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(BENCH.parent / "evaluate_models.py"), str(seen), "--series", "yeast-evolve-A",
           "bead", "--device", "cpu", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "in the training data of" in proc.stdout and "not scored" in proc.stdout
    assert "| planes (z spacing unknown) |" in proc.stdout and "#### bead (1 series" in proc.stdout
    assert "brightfield (" not in proc.stdout
    report = json.loads(out.read_text())
    assert {r["series"] for r in report["rows"]} == {"bead"} and len(report["rows"]) == 6
    proc = subprocess.run([*cmd, "--leave-out", "yeast-evolve-A=default"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "left out of training: scored with default" in proc.stdout and "#### brightfield (1 series" in proc.stdout
    summ = json.loads(out.read_text())["summary"]["brightfield"]
    assert summ["identity"]["pairs"] == 2 and {"auto", "model", "eq2", "eq2+res", "recon"} <= set(summ)


def test_step_sweep_refuses_negative_fixed_steps():
    proc = subprocess.run([sys.executable, str(BENCH.parent / "step_sweep.py"), "--fixed", "0.2", "-1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "steps are 0 or more" in proc.stderr.splitlines()[-1]


@pytest.mark.parametrize("args, message", [(["--model", "nosuch"], "no model 'nosuch'"),
                                           (["--stack", "missing.tif"], "--stack missing.tif does not exist")])
def test_slider_latency_refuses_bad_input_before_opening_napari(args, message):
    proc = subprocess.run([sys.executable, str(BENCH.parent / "slider_latency.py"), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr.splitlines()[-1]


@pytest.mark.parametrize("args, message", [
    (["--brightfield-dz", "0", "4"], "--brightfield-dz needs 0 < MIN <= MAX; got 0 4"),
    (["--widefield-photons", "6000", "300"], "--widefield-photons needs 0 < MIN <= MAX; got 6000 300"),
])
def test_make_training_data_refuses_bad_ranges_and_writes_nothing(tmp_path, args, message):
    script = BENCH.parents[1] / "scripts" / "make_training_data.py"
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(script), str(out), "--cells3d", "c.tif", "--bead", "b.tif", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr.splitlines()[-1]
    assert not out.exists()


def _oof_rows(series: str, modality: str, gains: dict, rec_sigma: float, n: int = 5) -> list[dict]:
    """Rows of one series whose every pair gains ``gains[column]`` dB over identity."""
    rows = []
    for i in range(n):
        row = {"series": series, "modality": modality, "identity_psnr": 20.0, "identity_ssim": 0.5,
               "auto_rule": f"auto: reconstruction residual {rec_sigma:.1f} sigma -> step 0.3 of Eq. 2, plain decoding"}
        for col, g in gains.items():
            row[f"{col}_psnr"], row[f"{col}_ssim"] = 20.0 + g, 0.5
        rows.append(row)
    return rows


def test_out_of_fold_rule_is_chosen_without_the_series_it_scores():
    oof = _script("out_of_fold")
    base = {"auto": 0.0, "recon": 0.0, **{f"s{k:g}{r}": -1.0 for k in oof.STRENGTHS for r in ("", "+res")}}
    # two series that favour a strength of 0.3 with plain decoding (reconstructed within noise), one that
    # favours 0.7 with residual decoding (reconstruction misses B by 3 sigma)
    rows = (_oof_rows("a", "widefield", {**base, "s0.3": 1.0}, 0.5)
            + _oof_rows("b", "widefield", {**base, "s0.3": 1.2}, 0.5)
            + _oof_rows("c", "brightfield", {**base, "s0.7+res": 2.0, "s0.3+res": 0.5}, 3.0))
    chosen = oof.leave_one_series_out(rows)
    assert chosen["c"][1] == 0.3  # fitted on a and b only: c's own best (0.7) is not seen
    assert chosen["a"][1] == 0.3  # b agrees with a; c alone would say 0.7
    assert "brightfield" in oof.report(rows) and "+0.50 dB" in oof.report(rows)  # c scored by 0.3 out of fold
    # a rule leaving more than 5 % of the pairs below -0.2 dB is never chosen
    losing = _oof_rows("d", "widefield", {**base, "s0.3": -3.0, "s0.2": 0.1}, 0.5, n=10)
    assert oof.best_rule(rows[:10] + losing)[1] != 0.3
