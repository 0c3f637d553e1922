"""Restore every TIFF of some files and folders with any method, on a dask.distributed cluster.

:func:`plan` finds the inputs (folders recursively; ``.tif``, ``.tiff``, ``.ome.tif``) and names each output
``OUT_DIR/<path relative to its input folder>/<stem><suffix>.tif``, refusing an output folder inside an
input folder. :func:`run_batch` sends one task per file to the cluster's workers; each worker loads the
method's weights once (:func:`latent_focus.methods.load_method` caches them per process), reads its file,
restores it and writes the result atomically, so a stopped batch leaves only complete outputs and a
second run skips them. A file that cannot be read or restored is reported and the others go on;
:func:`write_report` keeps each file's last real outcome across runs.

How files are restored:

* single-plane methods restore every plane of every channel;
* pair methods deblur planes ``B`` and ``C`` (``planes``) of every channel, or every plane with its
  neighbour further from focus (:meth:`~latent_focus.methods.Method.restore_planes`).

Outputs keep the input's axes: (y, x), (z, y, x), (c, y, x) or (z, c, y, x) in the file's order (a pair
run with ``planes`` gives one plane per channel), as float32 in the input's units, with the provenance of
the run. ``side_by_side`` writes the input and the output next to each other along x.
"""

from __future__ import annotations

import asyncio
import csv
import io as _io
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .files import atomic_write
from .progress import Progress

REPORT = "batch-report.csv"
REPORT_COLUMNS = ("file", "method", "planes", "seconds", "status", "message", "this_run")
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
CONNECT_TIMEOUT_S = 6
_TIFF = re.compile(r"\.(ome\.)?tiff?$", re.IGNORECASE)


@dataclass(frozen=True)
class Job:
    """One input file and the output it becomes."""

    source: str
    output: str
    name: str  # the source relative to its input folder, as reported


@dataclass(frozen=True)
class Spec:
    """What every task does: the method, its weights and options, and how outputs are written."""

    method: str
    model: str | None = None
    device: str = "auto"
    params: dict = field(default_factory=dict)  # options given on the command line, applied to the defaults
    planes: tuple[int, int] | None = None
    side_by_side: bool = False
    overwrite: bool = False
    axes: str | None = None  # the input files' axes where their own are missing or wrong (``--axes``)


@dataclass
class FileResult:
    """How one file went (a row of ``batch-report.csv``); ``loaded`` is true when this task loaded weights."""

    file: str
    method: str
    planes: int = 0
    seconds: float = 0.0
    status: str = DONE
    message: str = ""
    loaded: bool = False


# -- planning ------------------------------------------------------------------------------------------------

def plan(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, suffix: str = "_deblurred") -> list[Job]:
    """The jobs for ``inputs`` (files and folders, searched recursively) writing into ``out_dir``.

    Raises :class:`InputError` for a missing input, no TIFF at all, an output folder inside an input folder, or
    an output that would be one of the inputs.
    """
    out = Path(out_dir).resolve()
    jobs: dict[str, Job] = {}
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise InputError(f"{path} does not exist; pass TIFF files or folders holding them")
        root = path.resolve()
        if path.is_dir():
            if out == root or root in out.parents:
                raise InputError(f"the output folder {out_dir} is inside the input folder {path}; choose an output "
                                 "folder outside it (outputs would be read as inputs by the next run)")
            files = sorted(p for p in path.rglob("*") if p.is_file() and _TIFF.search(p.name)
                           and not _is_partial(p))
            base = root
        elif _TIFF.search(path.name):
            files, base = [path], root.parent
        else:
            raise InputError(f"{path.name} is not a TIFF file; pass .tif/.tiff/.ome.tif files or folders")
        for f in files:
            rel = f.resolve().relative_to(base)
            stem = _TIFF.sub("", rel.name)
            target = out / rel.parent / f"{stem}{suffix}.tif"
            if target == f.resolve():
                raise InputError(f"the output for {f} would be the file itself; pass another -o or --suffix")
            if str(target) in {j.output for j in jobs.values()} and str(f.resolve()) not in jobs:
                raise InputError(f"two inputs would both be written to {target}; pass them in separate runs")
            jobs.setdefault(str(f.resolve()), Job(str(f.resolve()), str(target), str(rel)))
    if not jobs:
        raise InputError("no TIFF files found in the inputs; pass .tif/.tiff/.ome.tif files or folders holding them")
    return list(jobs.values())


def _is_partial(path: Path) -> bool:
    """A temporary file of an atomic write (``name-XXXX.part.tif``), never an input."""
    return ".part." in path.name


def count_planes(path: str, axes: str | None = None) -> int:
    """Planes (y, x images) in a TIFF, from its header; 0 when it cannot be read (the task will say why)."""
    import tifffile

    from .io import file_axes, quiet_tifffile
    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, found = series.shape, file_axes(series.axes, series.shape, axes, Path(path).name)
        keep = [n for n, a in zip(shape, found) if a not in "YXS"]
        return int(np.prod(keep)) if keep else 1
    except Exception:
        return 0


# -- one file, on a worker -----------------------------------------------------------------------------------

def restore_file(job: Job, spec: Spec) -> FileResult:
    """Restore one file as :data:`spec` says and write its output; never raises for a bad file."""
    result = FileResult(job.name, spec.method)
    t0 = time.perf_counter()
    try:
        if Path(job.output).exists() and not spec.overwrite:
            result.status, result.message = SKIPPED, "output exists"
            return result
        method, result.loaded = _method(spec)
        data, axes, stacks = _read(job.source, method, spec.axes)
        result.planes = sum(s.n_planes for s in stacks)
        params = method.default_params().replace(**spec.params) if spec.params else method.default_params()
        outputs, records = [], []
        for stack in stacks:
            images, record = _restore_stack(method, stack, params, spec.planes)
            outputs.append(images)
            records.append(record)
        out, out_axes = _assemble(outputs, axes, spec.planes is not None)
        if spec.side_by_side:
            out = np.concatenate([_matching_input(data, axes, spec.planes), out], axis=out_axes.index("X"))
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        _write(job.output, out, out_axes, stacks[0], records, spec)
        result.message = f"{out_axes} {'x'.join(map(str, out.shape))} on {method.device_name}"
    except InputError as exc:
        result.status, result.message = FAILED, str(exc)
    except Exception as exc:  # a bad file must not stop the batch; the report says what happened
        first = (str(exc).strip().splitlines() or [""])[0]
        result.status, result.message = FAILED, f"{type(exc).__name__}: {first}"[:300]
    finally:
        result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _method(spec: Spec):
    """The method with its weights, loaded at most once in this process; and whether this call loaded it."""
    from .methods import _LOADED, get_method, load_method

    cls = get_method(spec.method)
    before = len(_LOADED)
    method = load_method(cls.name, spec.model, spec.device)
    return method, len(_LOADED) > before


def _read(path: str, method, given: str | None = None):
    """The file's pixels, its axes (singleton axes other than z and c dropped) and one Stack per channel.

    ``given`` are the file's axes where its own are missing or wrong (``--axes``).
    """
    import tifffile

    from .io import file_axes, quiet_tifffile, read_stack
    from .methods import PAIR

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, found = series.shape, series.axes
    except Exception as exc:
        raise InputError(f"cannot read {Path(path).name} as TIFF ({exc}); pass an intact TIFF file") from None
    kept = [(n, a) for n, a in zip(shape, file_axes(found, shape, given, Path(path).name)) if n > 1 or a in "ZCYX"]
    axes = "".join(a for _, a in kept)
    axes = axes.replace("S", "C") if "C" not in axes else axes
    axes = axes.replace("I", "Z").replace("Q", "Z") if "Z" not in axes else axes
    n_c = dict(zip(axes, (n for n, _ in kept))).get("C", 1)
    stacks = [read_stack(path, channel=c if "C" in axes else None, axes=given) for c in range(n_c)]
    if method.input == PAIR and stacks[0].n_planes < 2:
        raise InputError(f"{method.name} needs z-stacks of at least two planes; {Path(path).name} holds one plane")
    data = np.stack([s.data for s in stacks], axis=0)  # (c, z, y, x)
    return data, axes, stacks


def _restore_stack(method, stack, params, planes):
    """(n, y, x) restored planes of one channel and their provenance record."""
    from .io import check_plane_index
    from .methods import run
    from .provenance import describe_run

    if planes is not None:
        b, c = (check_plane_index(p, stack.n_planes) for p in planes)
        results = [run(method.restore(stack, b, params, partner=c))]
    else:
        results = run(method.restore_planes(stack, list(range(stack.n_planes)), params))
    return np.stack([np.asarray(r.image, dtype=np.float32) for r in results]), describe_run(results, stack, params)


def _assemble(outputs: list[np.ndarray], axes: str, single: bool) -> tuple[np.ndarray, str]:
    """Per-channel (n, y, x) results back into the file's axes order."""
    per_channel = [o[0] if (single or "Z" not in axes) else o for o in outputs]
    out_axes = axes if not single else axes.replace("Z", "")
    if "C" in axes:
        return np.moveaxis(np.stack(per_channel, axis=0), 0, out_axes.index("C")), out_axes
    return per_channel[0], out_axes


def _matching_input(data: np.ndarray, axes: str, planes) -> np.ndarray:
    """The input in the output's layout, for side-by-side outputs."""
    outs = [d[planes[0]] if planes is not None else d for d in data]
    return _assemble([o[None] if planes is not None else o for o in outs], axes, planes is not None)[0]


def _write(path: str, data: np.ndarray, axes: str, stack, records: list[dict], spec: Spec) -> None:
    """Float32 TIFF with ``axes``: ImageJ layout (with provenance and scale) when the order allows, else OME."""
    import json

    import tifffile

    from .io import check_output_path

    check_output_path(path, overwrite=spec.overwrite)
    data = np.ascontiguousarray(data, dtype=np.float32)
    kwargs = {}
    if stack.pixel_size_um:
        kwargs["resolution"] = (1.0 / stack.pixel_size_um, 1.0 / stack.pixel_size_um)
    info = records[0] if len(records) == 1 else {"channels": records}
    info = {**info, "batch": {"method": spec.method, "side_by_side": spec.side_by_side}}
    if _imagej_order(axes):
        meta = {"axes": axes, "Info": json.dumps(info, default=_json_value)}
        if stack.pixel_size_um:
            meta["unit"] = "um"
        if stack.z_um is not None and len(stack.z_um) > 1 and "Z" in axes:
            meta["spacing"] = float(np.median(np.abs(np.diff(stack.z_um))))
        atomic_write(Path(path), lambda tmp: tifffile.imwrite(tmp, data, imagej=True, metadata=meta, **kwargs))
    else:
        meta = {"axes": axes}
        if stack.pixel_size_um:
            meta.update(PhysicalSizeX=stack.pixel_size_um, PhysicalSizeY=stack.pixel_size_um)
        atomic_write(Path(path), lambda tmp: tifffile.imwrite(tmp, data, ome=True, metadata=meta))


def _imagej_order(axes: str) -> bool:
    order = "TZCYX"
    idx = [order.find(a) for a in axes]
    return -1 not in idx and idx == sorted(idx)


def _json_value(obj):
    return obj.tolist() if hasattr(obj, "tolist") else str(obj)


# -- the cluster ---------------------------------------------------------------------------------------------

def connect(scheduler: str = "local", workers: int = 1):
    """A dask.distributed client: a new LocalCluster on loopback (``"local"``), or the scheduler at an address.

    An address where no dask scheduler answers within :data:`CONNECT_TIMEOUT_S` seconds raises
    :class:`InputError` (:func:`check_scheduler`).
    """
    from distributed import Client, LocalCluster

    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=40)
        return Client(cluster)
    if "://" not in scheduler and not re.match(r"^[\w.\-]+:\d+$", scheduler):
        raise InputError(f"--scheduler takes 'local' or a scheduler address like tcp://host:8786; got {scheduler!r}")
    check_scheduler(scheduler)
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise _no_scheduler(scheduler, exc) from None


def check_scheduler(address: str) -> None:
    """Raise :class:`InputError` unless a dask scheduler answers at ``address`` within :data:`CONNECT_TIMEOUT_S`.

    dask's client waits without limit on a server that accepts a connection and never answers; this asks the
    server who it is, with a deadline, first.
    """
    try:
        reply = asyncio.run(asyncio.wait_for(_identity(address), CONNECT_TIMEOUT_S))
    except (OSError, TimeoutError) as exc:
        raise _no_scheduler(address, exc) from None
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind == "Scheduler":
        return
    what = f"is a dask {kind.lower()}, not a scheduler" if isinstance(kind, str) else "answers but is no dask scheduler"
    raise InputError(f"{address} {what}; pass the address the scheduler prints (dask scheduler, "
                     "cluster.scheduler_address) or --scheduler local")


async def _identity(address: str):
    """What the server at ``address`` says it is: a dask server's identity, or None for anything else."""
    from distributed.comm import connect as dask_connect

    try:
        comm = await dask_connect(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        raise
    except Exception:  # a handshake of bytes that are no dask message (an HTTP server, ...)
        return None
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    except Exception:
        return None
    finally:
        comm.abort()


def _no_scheduler(address: str, exc: BaseException) -> InputError:
    return InputError(f"no dask scheduler answers at {address} within {CONNECT_TIMEOUT_S} s ({type(exc).__name__}); "
                      "start one (dask scheduler, dask-jobqueue) or pass --scheduler local")


def run_batch(jobs: list[Job], spec: Spec, client, on_result: Callable[[FileResult], None] | None = None
              ) -> list[FileResult]:
    """Run every job on ``client``'s workers; ``on_result(result)`` sees each file as it ends."""
    from distributed import as_completed

    futures = [client.submit(restore_file, job, spec, key=f"restore-{i}-{Path(job.name).name}", pure=False)
               for i, job in enumerate(jobs)]
    results = []
    for future in as_completed(futures):
        try:
            result = future.result()
        except Exception as exc:  # the worker died: the file is reported, the batch goes on
            job = jobs[futures.index(future)]
            result = FileResult(job.name, spec.method, status=FAILED, message=f"worker lost: {type(exc).__name__}")
        results.append(result)
        if on_result is not None:
            on_result(result)
    order = {j.name: i for i, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order.get(r.file, 0))


# -- report --------------------------------------------------------------------------------------------------

def write_report(out_dir: str | os.PathLike, results: list[FileResult]) -> Path:
    """``OUT_DIR/batch-report.csv``, written atomically: each file's last real outcome and what this run did.

    Columns: file, method, planes, seconds, status, message (how the file was last restored, or why that
    failed) and this_run (done, skipped or failed; empty for files of earlier runs that were not among this
    run's inputs). A file this run skipped keeps the row of the run that restored it.
    """
    path = Path(out_dir) / REPORT
    earlier = _read_report(path)
    rows = {}
    for r in results:
        before = earlier.pop(r.file, None)
        kept = r.status == SKIPPED and before is not None and before.get("status") == DONE
        rows[r.file] = {**(before if kept else asdict(r)), "this_run": r.status}
    rows.update({name: {**row, "this_run": ""} for name, row in earlier.items()})
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=REPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows.values())
    atomic_write(path, lambda tmp: Path(tmp).write_text(buf.getvalue()))
    return path


def _read_report(path: Path) -> dict[str, dict]:
    """The rows of an earlier report by file (none when there is no readable report)."""
    try:
        with open(path, newline="") as f:
            return {row["file"]: row for row in csv.DictReader(f) if row.get("file")}
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}


def summary(results: list[FileResult], wall_s: float, max_rows: int = 40) -> str:
    """The printed summary: a row per file (failed ones first when there are many), then the totals."""
    counts = {s: sum(r.status == s for r in results) for s in (DONE, SKIPPED, FAILED)}
    shown = results if len(results) <= max_rows else [r for r in results if r.status == FAILED][:max_rows]
    width = min(60, max([len(r.file) for r in shown] + [4]))
    lines = [f"{'file':<{width}}  {'planes':>6}  {'seconds':>8}  {'status':<7}  message"]
    for r in shown:
        name = r.file if len(r.file) <= width else "..." + r.file[-width + 3:]
        lines.append(f"{name:<{width}}  {r.planes:>6}  {r.seconds:>8.2f}  {r.status:<7}  {r.message[:100]}")
    if len(shown) < len(results):
        lines.append(f"({len(results) - len(shown)} more rows in {REPORT})")
    loads = sum(r.loaded for r in results)
    lines.append(f"{counts[DONE]} done, {counts[SKIPPED]} skipped, {counts[FAILED]} failed in {wall_s:.1f} s "
                 f"({len(results) / max(wall_s, 1e-9):.2f} files/s); weights loaded {loads} time(s)")
    return "\n".join(lines)


def file_progress(total_files: int, total_planes: int) -> Callable[[FileResult, int], Progress]:
    """``report(result, expected)``: the :class:`Progress` (planes of all files) once another file has ended;
    ``expected`` counts its planes when the result does not."""
    files = planes = 0
    total = max(total_planes, 1)

    def report(result: FileResult, expected: int) -> Progress:
        nonlocal files, planes
        files, planes = files + 1, planes + (result.planes or expected)
        last = files == total_files
        return Progress(total if last else min(planes, total), total, f"{files}/{total_files} files "
                        f"{result.status}: {result.file}", finished=last)
    return report


def remove_partials(jobs: list[Job]) -> int:
    """Delete temporary files left by an interrupted atomic write of these jobs' outputs; returns how many."""
    removed = 0
    for job in jobs:
        out = Path(job.output)
        if out.parent.is_dir():
            for tmp in out.parent.glob(f"{out.stem}-*.part{out.suffix}"):
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed
