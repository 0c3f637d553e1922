"""Benchmark and data scripts: bench.py JSON keys; step_sweep.py agrees with evaluate; bad input refused."""

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
    from latent_focus.evaluate import evaluate_stack
    from latent_focus.io import Stack

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


@pytest.mark.parametrize("script", ["step_sweep.py", "evaluate_models.py"])
@pytest.mark.parametrize("args, message", [
    (["nosuch"], "no model 'nosuch'"),
    (["default", "--sim", "{tmp}"], "no recipe.json there"),
    (["default", "--data", "{tmp}"], "brightfield_hela_set1"),
])
def test_benchmark_scripts_refuse_bad_input_in_one_line(tmp_path, script, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run([sys.executable, str(BENCH.parent / script), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr.splitlines()[-1]


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
