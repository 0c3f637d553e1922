"""Throughput of ``latent-focus batch`` on a folder of 1024 x 1024 planes, with 1 and 2 LocalCluster workers.

The folder holds ``--files`` single-plane TIFFs: simulated widefield defocus of ``cells3d`` content tiled to
1024 x 1024. For each worker count the batch runs on a fresh LocalCluster (started and timed apart) and
the script reports files per second, the mean compute time per file measured inside the tasks, and the
scheduler's overhead per file: ``(wall time - sum of task times / workers) / files``.

    python benchmarks/batch_throughput.py OUT_DIR [--method analysis-synthesis] [--model FOLDER] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import tifffile

from latent_focus.batch import Spec, connect, plan, run_batch
from latent_focus.io import read_stack
from latent_focus.simulate import defocus_stack

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_folder(folder: Path, files: int, side: int = 1024) -> None:
    cells = read_stack(DATA / "cells3d_nuclei_confocal" / "stack.tif").data
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(files):
        content = np.tile(cells[int(rng.integers(10, 50))], (side // 256, side // 256))
        content = np.clip(content - np.percentile(content, 2), 0, None)
        plane = defocus_stack(content, [float(rng.uniform(0.5, 2.0))], pixel_size_um=0.26, photons=2000.0,
                              background_photons=100.0, seed=i)[0]
        tifffile.imwrite(folder / f"plane_{i:02d}.tif", plane.astype(np.uint16))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="scratch folder (inputs and outputs are written here)")
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--method", default="analysis-synthesis")
    p.add_argument("--model", default=None)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args(argv)
    inputs = args.out / "inputs"
    if not inputs.is_dir():
        make_folder(inputs, args.files)
    rows = []
    for n in args.workers:
        out = args.out / f"out-{n}"
        shutil.rmtree(out, ignore_errors=True)
        jobs = plan([inputs], out)
        t0 = time.perf_counter()
        client = connect("local", n)
        client.wait_for_workers(n)
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        results = run_batch(jobs, Spec(args.method, args.model, "cpu"), client)
        wall = time.perf_counter() - t1
        cluster = client.cluster
        client.close()
        cluster.close()
        task = [r.seconds for r in results if r.status == "done"]
        row = {"workers": n, "files": len(results), "done": len(task), "cluster_start_s": round(started, 2),
               "wall_s": round(wall, 2), "files_per_s": round(len(results) / wall, 3),
               "task_s_mean": round(float(np.mean(task)), 3),
               "overhead_per_file_s": round((wall - sum(task) / n) / len(results), 3),
               "weights_loaded": sum(r.loaded for r in results)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "throughput.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
