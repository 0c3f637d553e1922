"""``latent-focus batch``: planning, one file on a worker, and whole runs on a dask LocalCluster on loopback."""

from __future__ import annotations

import contextlib
import csv
import json
import socket
import threading
import time

import numpy as np
import pytest
import tifffile

from latent_focus.batch import (
    DONE,
    FAILED,
    SKIPPED,
    FileResult,
    Job,
    Spec,
    count_planes,
    plan,
    restore_file,
    write_report,
)
from latent_focus.cli import main
from latent_focus.errors import InputError

RL = {"iterations": 2, "optics": (0.75, 0.52), "defocus": 1.0}  # a fast method with no weights


@pytest.fixture()
def folder(tmp_path, blurred_stack):
    """inputs/: a 2-D plane, a (z, y, x) stack in a sub-folder, a (z, c, y, x) OME-TIFF and a corrupt TIFF."""
    root = tmp_path / "inputs"
    (root / "sub").mkdir(parents=True)
    tifffile.imwrite(root / "plane.tif", blurred_stack[2].astype(np.uint16))
    tifffile.imwrite(root / "sub" / "stack.tif", blurred_stack[:4].astype(np.uint16), imagej=True,
                     resolution=(5.0, 5.0), metadata={"axes": "ZYX", "spacing": 0.5, "unit": "um"})
    zc = np.stack([blurred_stack[:3], blurred_stack[3:6]], axis=1).astype(np.float32)
    tifffile.imwrite(root / "sub" / "two.ome.tif", zc, ome=True, metadata={"axes": "ZCYX"})
    (root / "sub" / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 10)
    (root / "notes.txt").write_text("not an image")
    return root


def test_plan_keeps_the_relative_layout_and_refuses_outputs_inside_inputs(tmp_path, folder):
    jobs = plan([folder], tmp_path / "out", "_x")
    names = {j.name: j.output for j in jobs}
    assert set(names) == {"plane.tif", "sub/stack.tif", "sub/two.ome.tif", "sub/broken.tif"}
    assert names["sub/two.ome.tif"] == str(tmp_path / "out" / "sub" / "two_x.tif")
    with pytest.raises(InputError, match="inside the input folder"):
        plan([folder], folder / "results")
    with pytest.raises(InputError, match="not a TIFF file"):
        plan([folder / "notes.txt"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no TIFF files found"):
        plan([tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(InputError, match="would be the file itself"):
        plan([folder / "plane.tif"], folder, suffix="")


def test_one_file_keeps_its_axes_scale_and_can_be_side_by_side(tmp_path, folder):
    spec = Spec("richardson-lucy", params=RL, side_by_side=True)
    for name, shape in (("plane.tif", (96, 192)), ("sub/stack.tif", (4, 96, 192)),
                        ("sub/two.ome.tif", (3, 2, 96, 192))):
        out = tmp_path / (name.replace("/", "_") + "_out.tif")
        result = restore_file(Job(str(folder / name), str(out), name), spec)
        assert result.status == DONE, result.message
        data = tifffile.imread(out)
        assert data.shape == shape and data.dtype == np.float32
        source = tifffile.imread(folder / name).astype(np.float32)
        assert np.array_equal(data[..., :96], source)  # the input on the left
    with tifffile.TiffFile(tmp_path / "sub_stack.tif_out.tif") as tif:
        assert tif.imagej_metadata["spacing"] == 0.5 and tif.series[0].axes == "ZYX"
        assert json.loads(tif.imagej_metadata["Info"])["method"] == "richardson-lucy"
    broken = restore_file(Job(str(folder / "sub/broken.tif"), str(tmp_path / "b.tif"), "broken.tif"), spec)
    assert broken.status == FAILED and "cannot read broken.tif" in broken.message
    assert not (tmp_path / "b.tif").exists()
    again = restore_file(Job(str(folder / "plane.tif"), str(tmp_path / "plane.tif_out.tif"), "plane.tif"), spec)
    assert again.status == SKIPPED


def test_axes_read_a_three_plane_stack_stored_as_colour_samples(tmp_path, blurred_stack):
    path = tmp_path / "three.tif"
    tifffile.imwrite(path, blurred_stack[:3].astype(np.uint16), photometric="rgb", planarconfig="separate")
    result = restore_file(Job(str(path), str(tmp_path / "o.tif"), "three.tif"), Spec("richardson-lucy", params=RL,
                                                                                     axes="ZYX"))
    assert result.status == DONE and result.planes == 3, result.message
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        assert tif.series[0].axes == "ZYX" and tif.series[0].shape == (3, 96, 96)
    assert count_planes(str(path), "ZYX") == 3
    wrong = restore_file(Job(str(path), str(tmp_path / "w.tif"), "three.tif"), Spec("latent", axes="ZCYX"))
    assert wrong.status == FAILED and "--axes zcyx names 4" in wrong.message


def test_pair_method_with_planes_or_every_plane(tmp_path, folder, tiny_model):
    one = restore_file(Job(str(folder / "sub/stack.tif"), str(tmp_path / "a.tif"), "stack.tif"),
                       Spec("latent", str(tiny_model), "cpu", planes=(1, 3)))
    assert one.status == DONE and tifffile.imread(tmp_path / "a.tif").shape == (96, 96)
    every = restore_file(Job(str(folder / "sub/two.ome.tif"), str(tmp_path / "b.tif"), "two.ome.tif"),
                         Spec("latent", str(tiny_model), "cpu"))
    assert every.status == DONE and tifffile.imread(tmp_path / "b.tif").shape == (3, 2, 96, 96)
    flat = restore_file(Job(str(folder / "plane.tif"), str(tmp_path / "c.tif"), "plane.tif"),
                        Spec("latent", str(tiny_model), "cpu"))
    assert flat.status == FAILED and "at least two planes" in flat.message


def test_batch_on_a_local_cluster_reports_resumes_and_loads_weights_once(tmp_path, folder, tiny_model, capsys):
    out = tmp_path / "out"
    args = ["batch", str(folder), "-o", str(out), "--method", "latent", "--model", str(tiny_model),
            "--device", "cpu", "--strength", "0.5"]
    assert main(args) == 1  # the broken file failed, the rest were done
    captured = capsys.readouterr()
    rows = {r["file"]: r for r in csv.DictReader(open(out / "batch-report.csv"))}
    assert {k: v["status"] for k, v in rows.items()} == {
        "plane.tif": FAILED, "sub/stack.tif": DONE, "sub/two.ome.tif": DONE, "sub/broken.tif": FAILED}
    assert rows["sub/stack.tif"]["planes"] == "4" and rows["sub/two.ome.tif"]["planes"] == "6"
    assert tifffile.imread(out / "sub" / "stack_deblurred.tif").shape == (4, 96, 96)
    assert "2 done, 0 skipped, 2 failed" in captured.out and "weights loaded 1 time(s)" in captured.out
    assert "4/4 files" in captured.err and "Traceback" not in captured.err + captured.out
    provenance = json.loads(tifffile.TiffFile(out / "sub" / "stack_deblurred.tif").imagej_metadata["Info"])
    assert provenance["parameters"]["strength"] == "0.5"
    before = (out / "sub" / "stack_deblurred.tif").stat().st_mtime_ns
    assert main(args) == 1
    again = {r["file"]: r for r in csv.DictReader(open(out / "batch-report.csv"))}
    assert (out / "sub" / "stack_deblurred.tif").stat().st_mtime_ns == before
    for name in ("sub/stack.tif", "sub/two.ome.tif"):  # the first run's record, marked as skipped by this one
        assert again[name] == {**rows[name], "this_run": SKIPPED}
    assert again["sub/broken.tif"]["status"] == again["sub/broken.tif"]["this_run"] == FAILED
    assert not list(out.rglob("*.part*"))


def test_the_report_keeps_each_files_last_real_outcome(tmp_path):
    first = [FileResult("a.tif", "psf-rl", 3, 12.5, DONE, "ZYX 3x64x64 on cpu"),
             FileResult("b.tif", "psf-rl", 0, 0.1, FAILED, "cannot read b.tif"),
             FileResult("c.tif", "psf-rl", 1, 2.0, DONE, "YX 64x64 on cpu")]
    write_report(tmp_path, first)
    second = [FileResult("a.tif", "latent", 0, 0.0, SKIPPED, "output exists"),
              FileResult("b.tif", "latent", 0, 0.0, SKIPPED, "output exists"),
              FileResult("d.tif", "latent", 2, 4.0, DONE, "ZYX 2x64x64 on cpu")]
    rows = list(csv.DictReader(open(write_report(tmp_path, second))))
    assert [r["file"] for r in rows] == ["a.tif", "b.tif", "d.tif", "c.tif"]
    a, b, d, c = rows
    assert a == {"file": "a.tif", "method": "psf-rl", "planes": "3", "seconds": "12.5", "status": DONE,
                 "message": "ZYX 3x64x64 on cpu", "this_run": SKIPPED}
    assert b["status"] == b["this_run"] == SKIPPED and b["message"] == "output exists"  # no real outcome to keep
    assert d["status"] == d["this_run"] == DONE
    assert c["status"] == DONE and c["this_run"] == ""  # not among this run's inputs: its record stays


def test_bad_batches_exit_2_with_one_line(tmp_path, folder, capsys):
    assert main(["batch", str(folder), "-o", str(folder / "out"), "--method", "richardson-lucy"]) == 2
    assert main(["batch", str(folder), "-o", str(tmp_path / "o"), "--method", "no-such-method"]) == 2
    assert main(["batch", str(folder), "-o", str(tmp_path / "o"), "--method", "richardson-lucy",
                 "--planes", "1", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "inside the input folder" in err[0] and "unknown method" in err[1]
    assert not (folder / "out").exists() and not (tmp_path / "o").exists()


@contextlib.contextmanager
def _listener(reply: bytes | None):
    """A loopback server that accepts every connection and sends ``reply`` (None: never answers)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                accepted.append(conn)
                if reply is not None:
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in accepted:
            conn.close()


@pytest.mark.parametrize("reply", [None, b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<html></html>"],
                         ids=["silent", "http"])
def test_a_listener_that_is_no_scheduler_exits_2_within_15_seconds(tmp_path, folder, capsys, reply):
    with _listener(reply) as address:
        t0 = time.perf_counter()
        code = main(["batch", str(folder / "plane.tif"), "-o", str(tmp_path / "o"), "--method", "richardson-lucy",
                     "--scheduler", address])
        elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and elapsed < 15, elapsed
    assert len(err) == 1 and address in err[0] and "--scheduler local" in err[0], err
    assert not (tmp_path / "o").exists()


def test_a_running_scheduler_address_is_used(tmp_path, folder, capsys):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      silence_logs=40) as cluster:
        code = main(["batch", str(folder / "plane.tif"), "-o", str(tmp_path / "o"), "--method", "richardson-lucy",
                     "--scheduler", cluster.scheduler_address, "--iterations", "2", "--optics", "0.75 0.52",
                     "--defocus", "1"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "o" / "plane_deblurred.tif").exists()


def test_an_unreachable_scheduler_exits_2_within_10_seconds(tmp_path, folder, capsys):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    code = main(["batch", str(folder / "plane.tif"), "-o", str(tmp_path / "o"), "--method", "richardson-lucy",
                 "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert code == 2 and time.perf_counter() - t0 < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"no dask scheduler answers at tcp://127.0.0.1:{port}" in err[0]
