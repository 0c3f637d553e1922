"""Smoke test of benchmarks/bench.py: the quick run finishes and writes JSON with the expected keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
