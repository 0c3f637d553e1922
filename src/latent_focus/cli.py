"""The ``latent-focus`` command line: restore, batch, methods, synthesize, deblur, train, evaluate, calibrate,
models, view, and the commands the methods add.

Bad input exits with code 2 and one line saying what is wrong and what to pass instead; outputs are
checked before any work starts and written atomically, so nothing is left half-written or overwritten,
and no command writes over one of its own inputs. Method options (``restore --method NAME ...``) are
generated from the method's ``Params``; ``latent-focus restore --method NAME --help`` lists them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .device import DEVICE_CHOICES
from .errors import InputError
from .terminal import ProgressLine, duration

EXIT_BAD_INPUT = 2
STRENGTHS = [round(0.05 * k, 2) for k in range(1, 21)]  # the deblurring strengths calibrate tries


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole_number(text: str, minimum: int, what: str, why: str = "") -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a whole number; got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{what} must be {minimum} or more{why}; got {value}")
    return value


def plane_index(text: str) -> int:
    """A plane index as typed on the command line: a whole number from 0."""
    return _whole_number(text, 0, "plane index", " (the first plane is 0)")


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "the value")


def _common(p: argparse.ArgumentParser, model: bool = True) -> None:
    from .methods.options import add_axes

    if model:
        p.add_argument("--model", "-m", default=None,
                       help="model folder or name (default: the shipped default model)")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="compute device: auto tries cuda, then mps, then cpu")
    p.add_argument("--channel", type=int, default=None, help="channel of a (z, c, y, x) stack")
    p.add_argument("--field", default=None, help="field name when a folder holds several")
    add_axes(p)


def _add_method_options(p: argparse.ArgumentParser, method: str | None) -> None:
    """The options of ``method``'s ``Params`` (an unknown method is refused later, with the method list)."""
    if method is None:
        return
    from .methods import get_method
    from .methods.options import add_params
    try:
        cls = get_method(method)
    except InputError:
        return
    add_params(p, cls.Params, f"{cls.name} options")


def build_parser(method: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``method`` (the ``--method`` value of ``restore``) adds that method's options."""
    from .methods import list_methods
    from .methods.latent import LatentParams
    from .methods.options import add_axes, argument_type, describe

    parser = _Parser(prog="latent-focus", description="Deblur out-of-focus planes and synthesise defocus blur "
                     "by moving through the latent space of an autoencoder trained on z-stacks, or restore "
                     "single planes with the other methods (latent-focus methods).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("restore", help="restore planes of a z-stack or a 2-D image with any method",
                       description="Restore planes with a method (see latent-focus methods). A pair method "
                       "deblurs plane B with the blurrier plane C (--planes B C), or with its neighbour "
                       "further from focus (--plane N, or every plane when neither is given); a single-plane "
                       "method restores --plane N, or every plane. Method options: latent-focus restore "
                       "--method NAME --help.")
    p.add_argument("input", help="2-D TIFF or z-stack (TIFF/OME-TIFF or a folder of per-plane TIFFs)")
    p.add_argument("-o", "--output", required=True, help="output TIFF (float32, input units)")
    p.add_argument("--method", required=True, help="restoration method (latent-focus methods lists them)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--plane", type=plane_index, default=None, help="the plane to restore (0-based)")
    which.add_argument("--planes", type=plane_index, nargs=2, default=None, metavar=("B", "C"),
                       help="pair methods: the sharper plane B and the blurrier plane C")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _common(p)
    _add_method_options(p, method)

    sub.add_parser("methods", help="list the restoration methods, their input and their weights")

    p = sub.add_parser("batch", help="restore every TIFF of files and folders with any method, on a dask cluster",
                       description="Restore every TIFF/OME-TIFF of the inputs (folders recursively) with a method and "
                       "write OUT_DIR/<relative path>/<name><suffix>.tif, keeping the input's axes. Single-plane "
                       "methods restore every plane; pair methods deblur --planes B C, or every plane with its "
                       "neighbour further from focus. Outputs already there are skipped (writes are atomic), bad "
                       "files are reported and the others go on; OUT_DIR/batch-report.csv keeps every file's last "
                       "real outcome (this_run says what this run did). Exit code 0 when all succeeded, 1 when some "
                       "failed. Method options: latent-focus batch --method NAME --help.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="TIFF/OME-TIFF files and folders (searched recursively)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder (not inside an input)")
    p.add_argument("--method", required=True, help="restoration method (latent-focus methods lists them)")
    p.add_argument("--planes", type=plane_index, nargs=2, default=None, metavar=("B", "C"),
                   help="pair methods: deblur plane B with the blurrier plane C of every stack")
    p.add_argument("--suffix", default="_deblurred", help="added to each output name (default _deblurred)")
    p.add_argument("--side-by-side", action="store_true", help="write input | output next to each other along x")
    p.add_argument("--scheduler", default="local", metavar="local|ADDRESS",
                   help="local: a dask LocalCluster on this machine; or the address of a running dask scheduler, "
                        "e.g. tcp://10.0.0.5:8786 (its workers must see the same paths)")
    p.add_argument("--workers", type=positive_int, default=1, help="LocalCluster worker processes (default 1)")
    p.add_argument("--overwrite", action="store_true", help="restore files whose output exists again")
    p.add_argument("--model", "-m", default=None, help="model folder or name for methods with weights")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="compute device on each worker")
    add_axes(p)
    _add_method_options(p, method)

    for name, first, help_ in (
        ("synthesize", "A C", "blur synthesis: D(alpha*E(x_A) + (1-alpha)*E(x_C)), A the sharper plane"),
        ("deblur", "B C", "deblurring: extrapolate from the latents of B and C towards focus (Eq. 2), B sharper"),
    ):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("stack", help="TIFF/OME-TIFF z-stack or folder of per-plane TIFFs")
        p.add_argument("-o", "--output", required=True, help="output TIFF (float32, input units)")
        p.add_argument("--planes", nargs=2, type=plane_index, required=True, metavar=tuple(first.split()),
                       help="plane indices (0-based)")
        if name == "deblur":
            fields = {f.name: f for f in LatentParams.specs()}
            p.add_argument("--alpha", nargs="+", type=argument_type(fields["alpha"].metadata["parse"]), default=[None],
                           help="alpha in (0, 1]; several values write a (n, y, x) sweep; default: 1 - d_B/d_C "
                                "from the planes' z positions (plane indices when the stack has none)")
            p.add_argument("--strength", default=LatentParams().strength, metavar="S",
                           type=argument_type(fields["strength"].metadata["parse"]), help=describe(fields["strength"]))
            p.add_argument("--tile", type=int, default=LatentParams().tile, help=describe(fields["tile"]))
        else:
            p.add_argument("--alpha", nargs="+", type=float, required=True,
                           help="alpha in (0, 1]; several values write a (n, y, x) sweep")
            p.add_argument("--tile", type=int, default=LatentParams().tile, help="tile size for large planes (px)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
        _common(p)

    p = sub.add_parser("train", help="train or fine-tune a model on z-stacks")
    p.add_argument("stacks", nargs="+", help="training z-stacks")
    p.add_argument("-o", "--output", required=True, help="model folder to write")
    p.add_argument("--from", dest="init", default=None, help="fine-tune from this model (e.g. default)")
    p.add_argument("--preset", default="compact", help="architecture for a new model (paper, compact, tiny; "
                   "disentangled and ml-vae: models of the blur-code method)")
    p.add_argument("--regularization", default="direct", choices=("baseline", "indirect", "direct"))
    p.add_argument("--loss", default="l1", choices=("l1", "mse"), help="reconstruction loss")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="optimisation steps (default 1000)")
    length.add_argument("--epochs", type=float, default=None, help="passes over all triplets and crops")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=None, help="crop size (pixels; default 128, blur-code presets 64)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-4, blur-code presets 1e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--triplets", default="auto", choices=("auto", "midpoint", "all"),
                   help="midpoint: only 2b = a + c; all: any b between a and c; auto: midpoint when possible")
    p.add_argument("--extrapolation", type=float, default=0.0, metavar="WEIGHT",
                   help="weight of a deblurring term: the sharpest plane decoded from the extrapolated latent "
                        "(Eq. 2); 0, the default, trains exactly the paper's losses")
    p.add_argument("--relative-latent", action="store_true",
                   help="direct regularization: divide the latent L1 (Eq. 4) by the latent distance between "
                        "planes a and c, so the latent cannot meet it by shrinking")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    _common(p, model=False)
    from .methods.blur_code.train_options import add_train_options
    add_train_options(p)

    p = sub.add_parser("adapt", help="adapt a model to one z-stack: a short self-supervised fine-tune on its planes",
                       description="Fine-tune a model for a few minutes on the planes of one z-stack: its sharper "
                       "planes are the targets for its blurrier ones, so no in-focus plane is needed. Saves the "
                       "model in the user models folder (or at a path) and prints the --model value that uses it.")
    p.add_argument("stack", help="the z-stack to deblur (TIFF/OME-TIFF or a folder of per-plane TIFFs)")
    p.add_argument("-o", "--output", required=True, metavar="NAME|PATH",
                   help="a model name, saved in the user models folder (latent-focus models shows it), or a folder "
                        "path (with a slash, or starting with . or ~)")
    p.add_argument("--minutes", type=float, default=2.0, help="time budget (default 2; a GPU runs more steps)")
    p.add_argument("--focus", type=plane_index, default=None,
                   help="the in-focus plane (default: the sharpest by the variance of the Laplacian)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    _common(p)

    p = sub.add_parser("evaluate", help="paper-style table: deblurring and blur synthesis vs baselines")
    p.add_argument("stacks", nargs="+", help="z-stacks with a known in-focus plane")
    p.add_argument("--focus", nargs="+", type=plane_index, required=True,
                   help="in-focus plane index (one, or one per stack)")
    p.add_argument("--method", action="append", default=None, metavar="NAME",
                   help="also score this restoration method with its defaults (repeatable): one row per method "
                        "next to identity and pixel-space extrapolation")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--max-cases", type=positive_int, default=None, help="limit cases per stack (at least 1)")
    rl = p.add_mutually_exclusive_group()
    rl.add_argument("--optics", nargs="+", type=float, default=None, metavar="VALUE",
                    help="NA WAVELENGTH_UM [IMMERSION_INDEX]: add a Richardson-Lucy column with the Born & Wolf "
                         "PSF of these optics at each plane's defocus (needs z positions)")
    rl.add_argument("--psf", default=None, help="add a Richardson-Lucy column with this PSF z-stack (e.g. a bead)")
    p.add_argument("--pixel-size", type=float, default=None, help="image pixel size (um) when the file does not say")
    p.add_argument("--rl-iterations", type=int, default=30, help="Richardson-Lucy iterations (default 30)")
    _common(p)

    p = sub.add_parser("calibrate", help="fit a model's deblurring strength on z-stacks with a known in-focus plane "
                       "and write it with the model to a new folder")
    p.add_argument("stacks", nargs="+", help="z-stacks with a known in-focus plane (not those you will evaluate on)")
    p.add_argument("--focus", nargs="+", type=plane_index, required=True,
                   help="in-focus plane index (one, or one per stack)")
    p.add_argument("-o", "--output", required=True, help="model folder to write (the model with its new strength)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    _common(p)

    sub.add_parser("models", help="list the shipped and user models")

    p = sub.add_parser("view", help="open napari with the sample z-stack and the Latent focus panel")
    p.add_argument("stack", nargs="?", default=None, help="z-stack to open instead of the sample")
    p.add_argument("--screenshot", default=None,
                   help="save a screenshot to this PNG and quit (without a display: a PNG in the user cache folder)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing screenshot file")
    add_axes(p)

    for cls in list_methods():
        for command in cls.commands():
            p = sub.add_parser(command.name, help=command.help, description=command.help)
            command.add_arguments(p)
            p.set_defaults(_run=command.run)
    return parser


def _version() -> str:
    from . import __version__
    return __version__


def _method_in(argv: list[str]) -> str | None:
    """The value of ``--method`` in ``argv`` (``--method X`` or ``--method=X``), if any."""
    for i, arg in enumerate(argv):
        if arg == "--method" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--method="):
            return arg.split("=", 1)[1]
    return None


# -- restore and methods -----------------------------------------------------------------------------

def _cmd_restore(args) -> int:
    from .io import check_output_path, check_plane_index, read_stack
    from .methods import PAIR, get_method, load_method
    from .methods.options import params_from_args
    from .provenance import write_result

    cls = get_method(args.method)
    params = params_from_args(args, cls.Params())  # ranges checked before any work
    if args.planes is not None and cls.input != PAIR:
        raise InputError(f"{cls.name} restores single planes; pass --plane N (or nothing, for every plane)")
    out = check_output_path(args.output, args.overwrite, inputs=[args.input])
    stack = read_stack(args.input, channel=args.channel, field=args.field, axes=args.axes)
    if cls.input == PAIR:
        _check_two_planes(stack, cls.name, args.input)
    method = load_method(cls.name, args.model, args.device)
    params = params_from_args(args, method.default_params())
    bar = _Bar(f"{cls.name} on {method.device_name}")
    if args.planes is not None:
        b, c = (check_plane_index(p, stack.n_planes) for p in args.planes)
        results = [bar.drive(method.restore(stack, b, params, partner=c))]
    elif args.plane is not None:
        results = [bar.drive(method.restore(stack, check_plane_index(args.plane, stack.n_planes), params))]
    else:
        results = bar.drive(method.restore_planes(stack, list(range(stack.n_planes)), params))
    path = write_result(out, results, stack, params, overwrite=args.overwrite, single=args.plane is not None
                        or args.planes is not None)
    print(f"wrote {path} ({cls.name} on {method.device_name})", file=sys.stderr)
    return 0


def _cmd_methods(args) -> int:
    from .methods import list_methods

    for cls in list_methods():
        kind = "pair of planes (B, C) of a z-stack" if cls.input == "pair" else "single plane"
        print(f"{cls.name:<20}{kind:<38}{cls.description}")
        print(f"{'':<20}weights: {cls.weights_source()}")
    return 0


def _cmd_batch(args) -> int:
    from .batch import (
        FAILED,
        ProgressBar,
        Spec,
        connect,
        count_planes,
        plan,
        remove_partials,
        run_batch,
        summary,
        write_report,
    )
    from .methods import PAIR, get_method
    from .methods.options import params_from_args
    from .models import find_model

    cls = get_method(args.method)
    params = params_from_args(args, cls.Params())  # ranges checked before any work
    given = {k: v for k, v in params.as_dict().items() if hasattr(args, f"param__{k}")}
    if args.planes is not None and cls.input != PAIR:
        raise InputError(f"{cls.name} restores single planes; leave --planes out")
    if args.model is not None and cls.uses_model:
        find_model(args.model)
    jobs = plan(args.inputs, args.output, args.suffix)
    spec = Spec(cls.name, args.model, args.device, given, tuple(args.planes) if args.planes else None,
                args.side_by_side, args.overwrite, args.axes)
    t0 = time.perf_counter()
    client = connect(args.scheduler, args.workers)
    try:
        Path(args.output).mkdir(parents=True, exist_ok=True)
        remove_partials(jobs)
        workers = len(client.scheduler_info().get("workers", {}))
        print(f"{len(jobs)} files, {cls.name}, {workers} worker(s) at {client.scheduler.address}", file=sys.stderr)
        expected = {j.name: count_planes(j.source, args.axes) for j in jobs}
        bar = ProgressBar(len(jobs), sum(expected.values()))
        results = run_batch(jobs, spec, client, lambda r: bar.update(r, expected[r.file]))
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and args.scheduler == "local":
            cluster.close()
    report = write_report(args.output, results)
    print(summary(results, time.perf_counter() - t0))
    print(f"report: {report}", file=sys.stderr)
    return 1 if any(r.status == FAILED for r in results) else 0


def _check_two_planes(stack, what: str, source: str) -> None:
    """Pair methods need a z-stack; a single plane is for the single-plane methods."""
    if stack.n_planes < 2:
        raise InputError(f"{what} needs a z-stack of at least two planes; {source} holds one plane. Restore a "
                         "single plane with latent-focus restore --method psf-rl|analysis-synthesis")


class _Bar(ProgressLine):
    """Drives a method generator with a progress line."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def drive(self, gen):
        from .methods import run
        result = run(gen, self.update)
        self.close()
        return result

    def update(self, p) -> None:
        frac = p.done / p.total if p.total else 1.0
        self.show(f"{self.what} {self.bar(frac)} {100 * frac:3.0f}% eta {duration(self.eta(frac))} {p.message}", frac)


# -- the latent pair commands ------------------------------------------------------------------------

def _cmd_synthesize(args) -> int:
    from .engine import LatentFocus, check_tile
    from .io import check_output_path, check_plane_index, read_stack
    from .latent import check_alpha
    from .provenance import write_plain

    tile = check_tile(args.tile)
    out = check_output_path(args.output, args.overwrite, inputs=[args.stack])
    alphas = [check_alpha(a) for a in args.alpha]
    stack = read_stack(args.stack, channel=args.channel, field=args.field, axes=args.axes)
    _check_two_planes(stack, "synthesize", args.stack)
    i, j = (check_plane_index(p, stack.n_planes) for p in args.planes)
    if i == j:
        raise InputError(f"--planes needs two different planes; got {i} twice")
    engine = LatentFocus(args.model, args.device, tile=tile)
    result = engine.synthesize(stack.data[i], stack.data[j], alphas, engine.normalizer(stack.data))
    info = {"method": "latent blur synthesis (Eq. 1)", "model": engine.name, "planes": [i, j], "alpha": alphas}
    write_plain(out, result[0] if len(alphas) == 1 else result, stack, info, args.overwrite)
    print(f"wrote {out} (model {engine.name} on {engine.device_name})", file=sys.stderr)
    return 0


def _cmd_deblur(args) -> int:
    """``deblur``: the latent method on one pair, once per alpha (the same result as ``restore --method latent``)."""
    from .io import check_output_path, check_plane_index, read_stack
    from .methods import load_method, run
    from .methods.latent import LatentParams
    from .provenance import write_result

    params = [LatentParams(alpha=a, strength=args.strength, tile=args.tile) for a in args.alpha]
    out = check_output_path(args.output, args.overwrite, inputs=[args.stack])
    stack = read_stack(args.stack, channel=args.channel, field=args.field, axes=args.axes)
    _check_two_planes(stack, "deblur", args.stack)
    b, c = (check_plane_index(p, stack.n_planes) for p in args.planes)
    method = load_method("latent", args.model, args.device)
    results = [run(method.restore(stack, b, p, partner=c)) for p in params]
    path = write_result(out, results, stack, params[0], overwrite=args.overwrite, single=len(results) == 1)
    print(f"wrote {path} (latent on {method.device_name}; {results[0].info['rule']})", file=sys.stderr)
    return 0


# -- training, evaluation, calibration ---------------------------------------------------------------

def _cmd_train(args) -> int:
    from .io import read_stack
    from .methods.blur_code.train_options import PRESETS as BLUR_CODE_PRESETS
    from .methods.blur_code.train_options import train_from_args
    from .models import read_card
    from .training import TrainConfig, train

    stacks = [read_stack(s, channel=args.channel, field=args.field, axes=args.axes) for s in args.stacks]
    if args.preset in BLUR_CODE_PRESETS:
        reports = train_from_args(stacks, args)
    else:
        config = TrainConfig(preset=args.preset, regularization=args.regularization, loss=args.loss,
                             steps=args.steps or 1000, epochs=args.epochs, batch_size=args.batch_size,
                             crop=args.crop or 128, lr=args.lr or 1e-4, seed=args.seed, device=args.device,
                             triplets=args.triplets, extrapolation=args.extrapolation,
                             relative_latent=args.relative_latent)
        reports = train(stacks, args.output, config, init=args.init, overwrite=args.overwrite)
    bar = _ProgressBar()
    last = None
    for progress in reports:
        bar.update(progress)
        last = progress
    bar.close()
    if last is not None:
        print(f"saved {args.output} after {last.step} steps on {last.device}", file=sys.stderr)
    else:
        card = read_card(args.output)
        print(f"{args.output} is already trained ({card.steps_done} of {card.steps_planned} steps, the same "
              f"recipe and data); nothing to do. Pass more --steps to train further, or --overwrite to start "
              f"again", file=sys.stderr)
    return 0


class _ProgressBar(ProgressLine):
    """Training progress: step, loss, the last validation, ETA and device."""

    val = ""

    def update(self, p) -> None:
        if p.val:
            psnr = next((f" psnr {p.val[k]:.1f}" for k in ("val_psnr_interp", "val_psnr_deblur") if k in p.val), "")
            self.val = f" val {p.val['val_total']:.4f}{psnr}"
        frac = p.step / p.total
        self.show(f"step {p.step}/{p.total} {self.bar(frac)} loss {p.losses['total']:.4f}{self.val} | "
                  f"eta {duration(p.eta_s)} | {p.device}", frac, force=p.done)


def _cmd_adapt(args) -> int:
    from .adapt import adapt
    from .io import read_stack
    from .models import model_argument, model_output

    stack = read_stack(args.stack, channel=args.channel, field=args.field, axes=args.axes)
    output = model_output(args.output)
    bar = _ProgressBar()
    last = None
    for progress in adapt(stack, output, args.model, args.minutes, focus=args.focus, device=args.device,
                          overwrite=args.overwrite):
        bar.update(progress)
        last = progress
    bar.close()
    print(f"saved {output}: {args.model or 'default'} adapted to {args.stack} in {last.step} steps "
          f"({last.elapsed_s:.0f} s on {last.device}); deblur with --model {model_argument(output)}", file=sys.stderr)
    return 0


def _cmd_evaluate(args) -> int:
    from .engine import LatentFocus
    from .evaluate import (
        check_focus,
        evaluate_methods,
        evaluate_stack,
        format_methods,
        format_table,
        summarize,
        summarize_default_rule,
    )
    from .io import read_stack
    from .methods import get_method
    from .models import find_model, model_family

    methods = [get_method(m).name for m in (args.method or [])]
    stacks = [read_stack(s, channel=args.channel, field=args.field, axes=args.axes) for s in args.stacks]
    focus = check_focus(args.focus, len(stacks))
    psf_stack = read_stack(args.psf) if args.psf else None
    psfs = [_rl_psf(args, s, psf_stack) for s in stacks]
    # the paper-style table needs an autoencoder; a model of another method (--method) leaves it the default
    engine = LatentFocus(args.model if model_family(find_model(args.model)) == "autoencoder" else None, args.device)
    t0 = time.perf_counter()
    reports = [evaluate_stack(engine, s, f, args.max_cases, psf, args.rl_iterations)
               for s, f, psf in zip(stacks, focus, psfs)]
    summary = summarize(reports)
    rows = evaluate_methods(methods, stacks, focus, args.model, args.device, args.max_cases) if methods else []
    if args.json:
        print(json.dumps({"model": engine.name, "device": engine.device_name, "stacks": [r.__dict__ for r in reports],
                          "default_rule": summarize_default_rule(reports), "summary": summary, "methods": rows},
                         indent=1))
    else:
        print(format_table(reports, summary, f"{engine.name} ({engine.model_path}) on {engine.device_name}"))
        if rows:
            print("\n" + format_methods(rows))
        print(f"\n{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _cmd_calibrate(args) -> int:
    from dataclasses import replace

    from .engine import LatentFocus
    from .evaluate import check_focus, fit_strength, strength_gains
    from .io import read_stack
    from .models.modelfile import save_model

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} exists; choose another output or pass --overwrite")
    stacks = [read_stack(s, channel=args.channel, field=args.field, axes=args.axes) for s in args.stacks]
    focus = check_focus(args.focus, len(stacks))
    engine = LatentFocus(args.model, args.device)
    if out.resolve() == engine.model_path.resolve():
        raise InputError(f"{out} is the model being calibrated; write the calibrated model to a new folder")
    gains = np.concatenate([strength_gains(engine, s, f, STRENGTHS) for s, f in zip(stacks, focus)])
    best, table = fit_strength(gains, STRENGTHS)
    print(f"{'strength':>9}{'mean gain':>11}{'median':>9}{'worst':>9}   (dB over identity, {len(gains)} pairs)")
    for row in table:
        print(f"{row['strength']:>9.2f}{row['mean_gain_db']:>11.2f}{row['median_gain_db']:>9.2f}"
              f"{row['worst_gain_db']:>9.2f}" + ("   <- best" if row["strength"] == best else ""))
    save_model(out, engine.model, replace(engine.card, deblur_strength={
        "value": best, "objective": "mean PSNR gain over identity when deblurring to the in-focus plane",
        "stacks": [{"source": Path(s.source).name, "focus": f} for s, f in zip(stacks, focus)],
        "pairs": int(len(gains)), "by_strength": table,
    }))
    print(f"saved {out} with deblurring strength {best:.2f}", file=sys.stderr)
    return 0


def _rl_psf(args, stack, psf):
    """The ``defocus -> kernel`` function for evaluate's Richardson-Lucy column, or None without --optics/--psf.

    ``psf`` is the stack read from ``--psf``, when given.
    """
    from .methods.richardson_lucy.deconvolution import bead_psf, optics_psf

    if args.optics is None and psf is None:
        return None
    pixel = args.pixel_size or stack.pixel_size_um
    if args.optics is not None:
        if len(args.optics) not in (2, 3):
            raise InputError("--optics takes NA WAVELENGTH_UM [IMMERSION_INDEX], e.g. --optics 0.75 0.55")
        if stack.z_um is None or pixel is None:
            raise InputError(f"{stack.source}: --optics needs the planes' z positions (a z.txt beside the file) "
                             f"and the pixel size (--pixel-size UM)")
        return optics_psf(*args.optics, pixel_size_um=pixel)
    if psf.z_um is not None and psf.pixel_size_um and pixel and stack.z_um is not None:
        return bead_psf(psf.data, psf.z_um, psf.pixel_size_um, pixel)
    if stack.z_um is None:
        return bead_psf(psf.data)
    raise InputError(f"{args.psf}: to match a PSF to a stack with z positions in um, give the PSF's z positions "
                     f"(z.txt) and both pixel sizes (file metadata or --pixel-size)")


def _cmd_models(args) -> int:
    from .models import list_models, read_card, user_models_dir

    cards = {name: read_card(folder) for name, folder in list_models().items()}
    name_width = max((len(name) for name in cards), default=0) + 2
    preset_width = max((len(card.preset) for card in cards.values()), default=0) + 2
    for name, card in cards.items():
        print(f"{name:<{name_width}}{card.preset:<{preset_width}}strength {card.strength:<6.2f}{card.description}")
    print(f"(user models folder: {user_models_dir()})")
    return 0


def _cmd_view(args) -> int:
    from .napari.launch import open_viewer
    return open_viewer(args.stack, args.screenshot, args.overwrite, args.axes)


COMMANDS = {"restore": _cmd_restore, "methods": _cmd_methods, "batch": _cmd_batch, "synthesize": _cmd_synthesize,
            "deblur": _cmd_deblur, "train": _cmd_train, "adapt": _cmd_adapt, "evaluate": _cmd_evaluate,
            "calibrate": _cmd_calibrate, "models": _cmd_models, "view": _cmd_view}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_method_in(argv)).parse_args(argv)
    run = getattr(args, "_run", None) or COMMANDS[args.command]
    try:
        return run(args)
    except InputError as exc:
        print(f"latent-focus {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"latent-focus {args.command}: error: {exc.strerror or exc} ({exc.filename or ''})", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"latent-focus {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
