"""Speed and memory of the latent-focus presets: encode, decode, a training step, the engine end to end.

Usage::

    python benchmarks/bench.py                       # full run: every preset at 512, 1024, 2048 px
    python benchmarks/bench.py --quick               # smoke test: 256 and 512 px, few repeats
    python benchmarks/bench.py --presets paper --sizes 1024 --device cuda --repeats 20

Every case (one preset, one operation, one size, one device) runs in a fresh Python process, so its
peak memory is its own: on the CPU the rise of the resident set's high-water mark (``VmHWM``, reset
through ``/proc/self/clear_refs`` where the kernel allows it) above what the process held once model
and inputs were in place; on CUDA the rise of ``torch.cuda.max_memory_allocated`` over the same
baseline. Latencies are medians of N timed repeats after warm-up (``time.perf_counter``, with
``torch.cuda.synchronize`` around each repeat on the GPU); N adapts to the case so the whole run stays
within minutes. Weights are freshly initialised (untrained): the numbers are timings only.

Results go to a table on stdout (Markdown) and to JSON (``--json``, default ``benchmarks/results/bench.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "bench.json"
SCHEMA = "latent-focus-bench/1"
RESULT_TAG = "BENCH_RESULT "

DEFAULT_SIZES = (512, 1024, 2048)
QUICK_SIZES = (256, 512)
TRAIN_BATCH = 8
TRAIN_CROP = 128
TRAIN_ALPHA = 0.5
BUSY_FRACTION = 0.15  # other processes using more of the CPU than this during a case: retried, then flagged
MAX_RETRIES = 2

# Reference numbers for the `paper` preset, decode of a 1024 x 1024 plane (latent 1024 x 32 x 32).
# They are external figures, printed beside ours; this script does not re-measure them.
REFERENCE = {
    ("cpu", "paper", "decode", 1024): {"label": "2-core CPU", "median_s": 2.6},
    ("cuda", "paper", "decode", 1024): {"label": "H100 eager fp32", "median_s": 3.7e-3, "mpix_per_s": 286.0},
    ("cuda", "paper", "decode_bf16_cl", 1024): {"label": "H100 bf16 channels-last", "median_s": 1.3e-3},
}

CASE_TITLES = {
    "encode": "encode",
    "decode": "decode",
    "decode_bf16_cl": "decode bf16 + channels-last",
    "train": f"train step (Adam, batch {TRAIN_BATCH})",
    "engine_deblur": "engine deblur (end to end)",
}


# --------------------------------------------------------------------------------------------------
# memory probes (worker side)
# --------------------------------------------------------------------------------------------------
def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class CpuMemory:
    """Peak resident-memory rise of this process from :meth:`start` to :meth:`peak_increase_mib`."""

    def __init__(self):
        self.method = "unavailable"
        self.base_kib = None

    def start(self) -> None:
        if _status_kib("VmHWM") is not None:
            if _reset_peak_rss():
                self.method = "VmHWM rise (reset via clear_refs)"
                self.base_kib = _status_kib("VmRSS")
            else:  # cannot reset: the mark so far is the baseline; a later peak below it reads as 0
                self.method = "VmHWM rise (no reset; lower bound)"
                self.base_kib = _status_kib("VmHWM")
            return
        try:  # macOS / BSD: ru_maxrss cannot be reset, so this is a lower bound too
            import resource

            scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
            self._ru = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1024
            self.base_kib = self._ru()
            self.method = "ru_maxrss rise (lower bound)"
        except (ImportError, OSError):
            try:  # Windows: psutil reports the peak working set
                import psutil

                self._ru = lambda: psutil.Process().memory_info().peak_wset / 1024
                self.base_kib = self._ru()
                self.method = "peak working set rise (lower bound)"
            except (ImportError, AttributeError):
                self.method = "unavailable"

    def peak_increase_mib(self) -> float | None:
        if self.base_kib is None:
            return None
        now = _status_kib("VmHWM") if self.method.startswith("VmHWM") else self._ru()
        return max(0.0, (now - self.base_kib) / 1024)


class ForeignLoad:
    """CPU time other processes used while a case ran, as a fraction of the machine (Linux /proc/stat).

    A benchmark on a shared machine reads slow when something else runs beside it; this number lets
    the table mark such rows instead of passing them off as the machine's speed.
    """

    def __init__(self):
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.cores = os.cpu_count() or 1

    @staticmethod
    def _busy_ticks() -> int | None:
        try:
            with open("/proc/stat") as f:
                vals = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
        return sum(vals[:8]) - idle  # guest time is already inside user/nice

    def start(self) -> None:
        self.busy0, self.own0, self.wall0 = self._busy_ticks(), os.times(), time.perf_counter()

    def fraction(self) -> float | None:
        busy1, own1, wall = self._busy_ticks(), os.times(), time.perf_counter() - self.wall0
        if self.busy0 is None or busy1 is None or wall <= 0:
            return None
        own = (own1.user - self.own0.user) + (own1.system - self.own0.system)
        other = (busy1 - self.busy0) / self.tick - own
        return round(max(0.0, other / (wall * self.cores)), 3)


class CudaMemory:
    method = "torch.cuda.max_memory_allocated rise"

    def __init__(self, device):
        self.device = device

    def start(self) -> None:
        import torch

        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.base = torch.cuda.memory_allocated(self.device)

    def peak_increase_mib(self) -> float:
        import torch

        torch.cuda.synchronize(self.device)
        return (torch.cuda.max_memory_allocated(self.device) - self.base) / 2 ** 20


# --------------------------------------------------------------------------------------------------
# one case (worker side)
# --------------------------------------------------------------------------------------------------
def _latent_like(preset: str, size: int, device, channels_last: bool = False):
    """A latent of the shape ``preset`` gives a ``size`` x ``size`` plane, without running the encoder.

    Shapes come from a pass on the ``meta`` device, so the decode case's peak memory holds no trace
    of an encoder pass. Decode cost does not depend on the latent's values.
    """
    import torch

    from latent_focus.latent import map_parts
    from latent_focus.models import build_model

    meta = build_model(preset).eval().to("meta")
    with torch.inference_mode():
        shapes = meta.encode(torch.empty(1, 1, size, size, device="meta"))
    gen = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return map_parts(lambda t: torch.randn(t.shape, generator=gen).to(device).contiguous(memory_format=fmt), shapes)


def _time(fn, sync, spec: dict) -> dict:
    """Warm up, choose N, time N repeats; or report a skip when the case would overrun its limit."""
    warm = []
    t_start = time.perf_counter()
    while True:
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        warm.append(time.perf_counter() - t0)
        spent = time.perf_counter() - t_start
        if len(warm) >= spec["max_warmup"] or spent >= spec["warmup_s"]:
            break
    est = min(warm[-2:])
    warm_total = sum(warm)
    n_fit = math.floor((spec["max_case_s"] - warm_total) / est) if est > 0 else spec["max_repeats"]
    if n_fit < spec["min_repeats"]:
        return {"status": "skipped", "single_run_s": warm[-1],
                "note": (f"one run takes {_fmt_s(warm[-1])}; warm-up + {spec['min_repeats']} repeats would "
                         f"exceed the {spec['max_case_s']:.0f} s case limit")}
    if spec["repeats"]:
        n = min(spec["repeats"], n_fit)
    else:
        n = max(spec["min_repeats"], min(spec["max_repeats"], int(spec["budget_s"] / est) if est > 0 else 1))
        n = min(n, n_fit)
    times = []
    for _ in range(n):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    out = {"status": "ok", "repeats": n, "warmup_runs": len(warm), "median_s": statistics.median(times),
           "min_s": min(times), "max_s": max(times), "times_s": times}
    if spec["repeats"] and n < spec["repeats"]:
        out["note"] = f"repeats capped at {n} to stay within the {spec['max_case_s']:.0f} s case limit"
    return out


def run_case(spec: dict) -> dict:
    import numpy as np
    import torch

    from latent_focus.methods.latent.losses import triplet_losses
    from latent_focus.models import build_model

    torch.manual_seed(0)
    device = torch.device(spec["device"])
    case, size, preset = spec["case"], spec["size"], spec["preset"]
    on_cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if on_cuda else (lambda: None)
    mem = CudaMemory(device) if on_cuda else CpuMemory()
    extra: dict = {}

    if case in ("encode", "decode", "decode_bf16_cl"):
        model = build_model(preset).eval().to(device)
        if size % model.multiple:
            return {"status": "skipped", "note": f"{size} px is not a multiple of {model.multiple} ({preset})"}
        if case == "encode":
            x = torch.rand(1, 1, size, size, device=device)

            def fn():
                with torch.inference_mode():
                    return model.encode(x)
        elif case == "decode":
            z = _latent_like(preset, size, device)

            def fn():
                with torch.inference_mode():
                    return model.decode(z)
        else:
            if not on_cuda:
                return {"status": "skipped", "note": "bf16 + channels-last decode is measured on CUDA only"}
            model = model.to(memory_format=torch.channels_last)
            z = _latent_like(preset, size, device, channels_last=True)

            def fn():
                with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                    return model.decode(z)
        extra["precision"] = "bf16 autocast" if case == "decode_bf16_cl" else "fp32"
        extra["pixels"] = size * size

    elif case == "train":
        model = build_model(preset).to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        b, crop = spec["train_batch"], spec["train_crop"]
        batch = torch.rand(3, b, 1, crop, crop, device=device)
        alpha = torch.full((b,), TRAIN_ALPHA, device=device)

        def fn():  # one step of latent_focus.methods.latent.train (bf16 autocast on CUDA, as train() does)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda):
                terms = triplet_losses(model, batch, alpha, "direct")
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()

        extra["precision"] = "bf16 autocast" if on_cuda else "fp32"
        extra["batch"] = [3, b, 1, crop, crop]

    elif case == "engine_deblur":
        from latent_focus.engine import LatentFocus

        lf = LatentFocus(spec["model_dir"], device=spec["device"])
        rng = np.random.default_rng(0)
        plane_b = (100 + 1000 * rng.random((size, size))).astype(np.float32)
        plane_c = (100 + 1000 * rng.random((size, size))).astype(np.float32)
        norm = lf.normalizer(np.stack([plane_b, plane_c]))

        def fn():
            return lf.deblur(plane_b, plane_c, 0.5, norm)

        extra["precision"] = "bf16 autocast" if on_cuda else "fp32"
        extra["pixels"] = size * size
        extra["tile"] = lf.tile
    else:
        raise ValueError(f"unknown case {case!r}")

    load = ForeignLoad()
    mem.start()
    load.start()
    res = _time(fn, sync, spec)
    res["foreign_cpu_frac"] = load.fraction()
    res["peak_mem_mib"] = mem.peak_increase_mib()
    res["mem_method"] = mem.method
    res.update(extra)
    res["threads"] = torch.get_num_threads()
    if res["status"] == "ok":
        if "pixels" in extra:
            res["mpix_per_s"] = extra["pixels"] / 1e6 / res["median_s"]
        if case == "train":
            res["steps_per_s"] = 1.0 / res["median_s"]
    return res


def worker_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    try:
        res = run_case(spec)
    except Exception as exc:  # reported as an error row, the run goes on
        res = {"status": "error", "note": f"{type(exc).__name__}: {exc}"[:300]}
    print(RESULT_TAG + json.dumps(res), flush=True)
    return 0


# --------------------------------------------------------------------------------------------------
# orchestration (parent side)
# --------------------------------------------------------------------------------------------------
def _fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1:
        return f"{s * 1e3:.3g} ms" if s < 0.1 else f"{s * 1e3:.0f} ms"
    return f"{s:.2f} s"


def _host() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    host = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu": cpu, "cpu_cores_usable": cores, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        host["gpu"] = torch.cuda.get_device_name(0)
        host["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
    return host


def _devices(arg: str) -> list[str]:
    import torch

    want = [d.strip().lower() for d in arg.split(",") if d.strip()]
    out = []
    for d in want:
        if d == "auto":
            out += ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        elif d == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda asked for, but torch.cuda.is_available() is False here")
        elif d in ("cpu", "cuda"):
            out.append(d)
        else:
            raise SystemExit(f"unknown device {d!r}; pass auto, cpu, cuda or a comma list")
    return list(dict.fromkeys(out))


def _plan(args, devices: list[str]) -> list[dict]:
    cases = []
    for dev in devices:
        for preset in args.presets:
            for case in ("encode", "decode") + (("decode_bf16_cl",) if dev == "cuda" else ()):
                for size in sorted(args.sizes):
                    cases.append({"device": dev, "preset": preset, "case": case, "size": size})
            cases.append({"device": dev, "preset": preset, "case": "train", "size": TRAIN_CROP})
            if args.engine_size:
                cases.append({"device": dev, "preset": preset, "case": "engine_deblur", "size": args.engine_size})
    return cases


def _run_worker(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "skipped", "note": f"killed after {timeout:.0f} s (case limit)"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            res = json.loads(line[len(RESULT_TAG):])
            res["wall_s"] = time.perf_counter() - t0
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"status": "error", "note": f"worker exited {proc.returncode}: {' | '.join(tail)}"[:300]}


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _busy_now(window: float = 0.5) -> float | None:
    """Fraction of the machine's CPU in use (by anything: the parent itself is idle) over ``window`` s."""
    probe = ForeignLoad()
    probe.start()
    time.sleep(window)
    return probe.fraction()


def _wait_quiet(max_wait: float, threshold: float = BUSY_FRACTION / 2) -> float:
    """Wait (at most ``max_wait`` s) until other processes leave the CPU mostly idle; returns seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait:
        busy = _busy_now()
        if busy is None or busy < threshold:
            break
    return time.perf_counter() - t0


def _reference_for(r: dict) -> dict | None:
    return REFERENCE.get((r["device"], r["preset"], r["case"], r["size"]))


def _row(r: dict) -> list[str]:
    size = (f"{r['size']}² x{TRAIN_BATCH} triplets" if r["case"] == "train" else f"{r['size']}²")
    if r["status"] != "ok":
        msg = r["status"] + (f": {r['note']}" if r.get("note") else "")
        return [r["device"], r["preset"], CASE_TITLES[r["case"]], size, "-", "-", "-", "-", msg]
    thr = (f"{r['steps_per_s']:.2f} steps/s" if "steps_per_s" in r else
           f"{r['mpix_per_s']:.3g} Mpix/s" if "mpix_per_s" in r else "-")
    mem = "-" if r.get("peak_mem_mib") is None else f"+{r['peak_mem_mib']:.0f} MiB"
    ref = _reference_for(r)
    note = ""
    if ref:
        note = f"ref {ref['label']}: {_fmt_s(ref['median_s'])}"
        if "mpix_per_s" in ref:
            note += f" ({ref['mpix_per_s']:.0f} Mpix/s)"
        note += f"; ours/ref {r['median_s'] / ref['median_s']:.2f}x"
    if r.get("note"):
        note = f"{note}; {r['note']}" if note else r["note"]
    if (r.get("foreign_cpu_frac") or 0) > BUSY_FRACTION:
        busy = f"other processes used {r['foreign_cpu_frac']:.0%} of the CPU meanwhile: slower than idle"
        note = f"{note}; {busy}" if note else busy
    return [r["device"], r["preset"], CASE_TITLES[r["case"]], size, _fmt_s(r["median_s"]), thr,
            str(r["repeats"]), mem, note]


def render(report: dict) -> str:
    h = report["host"]
    dev = f"CPU {h['cpu']} ({h['cpu_cores_usable']} cores, {h['torch_threads']} torch threads)"
    if h.get("gpu"):
        dev += f"; GPU {h['gpu']}"
    lines = [
        "### latent-focus benchmark — untrained (randomly initialised) weights, timings only",
        "",
        f"{report['date']} · torch {h['torch']} · {dev} · batch 1, 1 channel, float32 input, "
        f"inference_mode, eval() · median of N repeats after warm-up",
        "",
    ]
    head = ["device", "preset", "case", "size", "median", "throughput", "N", "peak mem", "notes / reference"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" for _ in head) + "|")
    for r in report["results"]:
        lines.append("| " + " | ".join(_row(r)) + " |")
    lines.append("")
    refs = []
    for (d, p, c, s), ref in REFERENCE.items():
        if p not in report["config"]["presets"]:
            continue
        ours = next((r for r in report["results"] if (r["device"], r["preset"], r["case"], r["size"]) == (d, p, c, s)
                     and r["status"] == "ok"), None)
        txt = f"- {p} {CASE_TITLES[c]} {s}², {ref['label']}: {_fmt_s(ref['median_s'])}"
        if "mpix_per_s" in ref:
            txt += f" ({ref['mpix_per_s']:.0f} Mpix/s)"
        txt += (f" — this run ({d}): {_fmt_s(ours['median_s'])}" if ours else f" — not measured in this run ({d})")
        refs.append(txt)
    if refs:
        lines.append("Reference numbers (external, not re-measured by this script):")
        lines += refs
        lines.append("")
    loads = [x for x in [report.get("loadavg_1min_start")] + [r.get("loadavg_1min_after") for r in report["results"]]
             if x is not None]
    if loads and max(loads) > 1.5 * h["cpu_cores_usable"]:
        lines.append(f"**Warning:** the machine was busy (1-min load average up to {max(loads):.1f} on "
                     f"{h['cpu_cores_usable']} cores); CPU timings are inflated.")
        lines.append("")
    lines.append(f"Peak mem: rise above the resident model and inputs during the timed runs "
                 f"(CPU: {report.get('cpu_mem_method', 'VmHWM')}; CUDA: max_memory_allocated). "
                 f"Train step: latent_focus.methods.latent.losses.triplet_losses(..., 'direct') + Adam, "
                 f"batch (3, {TRAIN_BATCH}, 1, {TRAIN_CROP}, {TRAIN_CROP}). Engine deblur: LatentFocus.deblur "
                 f"on two planes (normalise, tile, 2 encodes, latent extrapolation, decode, denormalise). "
                 f"Total wall time {report['total_wall_s']:.0f} s.")
    return "\n".join(lines)


def _write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, path)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=None, help="presets to measure (default: all in PRESETS)")
    p.add_argument("--sizes", nargs="+", type=int, default=None,
                   help=f"square plane sizes in px (default {' '.join(map(str, DEFAULT_SIZES))}; "
                        f"--quick: {' '.join(map(str, QUICK_SIZES))})")
    p.add_argument("--device", default="auto",
                   help="auto (CPU, plus CUDA when available), cpu, cuda, or a comma list (default auto)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats per case (default: adaptive, >= 3, to a per-case time budget)")
    p.add_argument("--quick", action="store_true", help="smoke test: sizes 256 and 512, few repeats")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"JSON output (default {DEFAULT_JSON})")
    p.add_argument("--engine-size", type=int, default=None,
                   help="plane size of the engine deblur row (default 1024, --quick 256; 0 leaves it out)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds of timed repeats per case when N is adaptive (default 8; --quick 0.3)")
    p.add_argument("--max-case-s", type=float, default=60.0,
                   help="skip a case whose warm-up plus 3 repeats would take longer (default 60)")
    p.add_argument("--wait-quiet", type=float, default=10.0,
                   help="before each CPU case, wait up to this many seconds for other processes to leave the "
                        "CPU idle (default 10; not with --quick)")
    p.add_argument("--retry-budget", type=float, default=180.0,
                   help=f"seconds spent at most re-running CPU cases during which other processes used more "
                        f"than {BUSY_FRACTION * 100:.0f}%% of the CPU (default 180; none with --quick)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker)

    from latent_focus.models import PRESETS, ModelCard, build_model, save_model

    t_run = time.perf_counter()
    args.presets = args.presets or list(PRESETS)
    unknown = [p for p in args.presets if p not in PRESETS]
    if unknown:
        raise SystemExit(f"unknown preset(s) {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    args.sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if any(s < 32 for s in args.sizes):
        raise SystemExit("sizes must be at least 32 px")
    if args.engine_size is None:
        args.engine_size = 256 if args.quick else 1024
    budget = args.budget if args.budget is not None else (0.3 if args.quick else 8.0)
    devices = _devices(args.device)
    base_spec = {
        "repeats": args.repeats, "budget_s": budget, "max_case_s": args.max_case_s,
        "min_repeats": 3, "max_repeats": 5 if args.quick else 50,
        "max_warmup": 1 if args.quick else 5, "warmup_s": 0.0 if args.quick else 0.5,
        "train_batch": TRAIN_BATCH, "train_crop": TRAIN_CROP,
    }
    report = {
        "schema": SCHEMA,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]) if argv is None else argv,
        "host": _host(),
        "config": {"presets": args.presets, "sizes": sorted(args.sizes), "devices": devices,
                   "repeats": args.repeats or "adaptive", "budget_s": budget, "max_case_s": args.max_case_s,
                   "quick": args.quick, "train_batch": TRAIN_BATCH, "train_crop": TRAIN_CROP,
                   "engine_size": args.engine_size, "weights": "untrained (random init)"},
        "reference": [{"device": d, "preset": p, "case": c, "size": s, **ref}
                      for (d, p, c, s), ref in REFERENCE.items()],
        "results": [],
        "loadavg_1min_start": _loadavg(),
        "total_wall_s": 0.0,
    }
    plan = _plan(args, devices)
    retry_left = args.retry_budget
    last: dict = {}  # (device, preset, case) -> (size, single-run seconds) for predicting the next size
    with tempfile.TemporaryDirectory(prefix="latent-focus-bench-") as tmp:
        model_dirs = {}
        if args.engine_size:
            for preset in args.presets:
                model_dirs[preset] = str(save_model(Path(tmp) / preset, build_model(preset),
                                                    ModelCard(preset=preset, name=f"bench-{preset}-untrained")))
        for i, case in enumerate(plan, 1):
            key = (case["device"], case["preset"], case["case"])
            spec = {**base_spec, **case, "model_dir": model_dirs.get(case["preset"])}
            label = f"[{i}/{len(plan)}] {case['device']} {case['preset']} {case['case']} {case['size']}"
            print(label + " ...", end=" ", file=sys.stderr, flush=True)
            res = None
            waited = 0.0
            if case["device"] == "cpu" and args.wait_quiet > 0 and not args.quick:
                waited = _wait_quiet(args.wait_quiet)
            if key in last and case["case"] != "train":
                prev_size, prev_s = last[key]
                predicted = prev_s * (case["size"] / prev_size) ** 2
                if predicted * (1 + base_spec["min_repeats"]) > args.max_case_s:
                    res = {"status": "skipped", "predicted_single_run_s": predicted,
                           "note": (f"predicted {_fmt_s(predicted)} per run (scaled from {prev_size}²); warm-up + "
                                    f"{base_spec['min_repeats']} repeats would exceed the "
                                    f"{args.max_case_s:.0f} s case limit")}
            if res is None:
                res = _run_worker(spec, timeout=4 * args.max_case_s + 60)
                tries = 0
                while (case["device"] == "cpu" and res.get("status") == "ok" and tries < MAX_RETRIES
                       and (res.get("foreign_cpu_frac") or 0) > BUSY_FRACTION
                       and retry_left > 0 and not args.quick):
                    tries += 1
                    print(f"busy ({res['foreign_cpu_frac']:.0%} of the CPU used by other processes); retrying",
                          end=" ... ", file=sys.stderr, flush=True)
                    t_retry = time.perf_counter()
                    _wait_quiet(min(30.0, retry_left))
                    again = _run_worker(spec, timeout=4 * args.max_case_s + 60)
                    retry_left -= time.perf_counter() - t_retry
                    if again.get("status") == "ok" and (again.get("foreign_cpu_frac") or 0) < res["foreign_cpu_frac"]:
                        res = again
                res["retries"] = tries
            if res.get("status") == "ok":
                last[key] = (case["size"], res["median_s"])
            elif res.get("single_run_s"):
                last[key] = (case["size"], res["single_run_s"])
            if waited >= 1:
                res["waited_for_quiet_s"] = round(waited, 1)
            row = {**case, **res, "loadavg_1min_after": _loadavg()}
            report["results"].append(row)
            if res.get("mem_method") and case["device"] == "cpu":
                report["cpu_mem_method"] = res["mem_method"]
            print(res["status"] if res["status"] != "ok" else _fmt_s(res["median_s"]), file=sys.stderr, flush=True)
            report["total_wall_s"] = time.perf_counter() - t_run
            _write_json(args.json, report)  # partial results survive an interrupted run
    report["total_wall_s"] = time.perf_counter() - t_run
    report["table"] = render(report)
    _write_json(args.json, report)
    print(report["table"])
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
