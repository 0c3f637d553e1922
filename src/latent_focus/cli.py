"""The ``latent-focus`` command line: restore, batch, methods, train, models, view, and the commands the methods
add (e.g. the latent method's synthesize, deblur, adapt, evaluate and calibrate).

Bad input exits with code 2 and one line saying what is wrong and what to pass instead; outputs are
checked before any work starts and written atomically, so nothing is left half-written or overwritten,
and no command writes over one of its own inputs. Method options (``restore --method NAME ...``) are
generated from the method's ``Params``; ``latent-focus restore --method NAME --help`` lists them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .device import DEVICE_CHOICES
from .errors import InputError
from .methods.options import add_axes, add_common, check_two_planes, plane_index, positive_int
from .terminal import ProgressLine

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
    add_common(p)
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

    _train_arguments(sub.add_parser("train", help="train or fine-tune a model on z-stacks"))

    sub.add_parser("models", help="list the shipped and user models")

    p = sub.add_parser("view", help="open napari with the sample z-stack and the Latent focus panel")
    p.add_argument("stack", nargs="?", default=None, help="z-stack to open instead of the sample")
    p.add_argument("--screenshot", default=None,
                   help="save a screenshot to this PNG and quit (without a display: a PNG in the user cache folder)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing screenshot file")
    add_axes(p)

    for cls in list_methods():
        for command in cls.commands():
            p = sub.add_parser(command.name, help=command.help, description=command.description or command.help)
            command.add_arguments(p)
            p.set_defaults(_run=command.run)
    return parser


def _train_arguments(p: argparse.ArgumentParser) -> None:
    """``train``: the options every preset reads, then those of each method that trains models."""
    from .methods import list_methods

    presets = {cls.name: cls.train_presets for cls in list_methods() if cls.train_presets}
    p.add_argument("stacks", nargs="+", help="training z-stacks")
    p.add_argument("-o", "--output", required=True, help="model folder to write")
    p.add_argument("--from", dest="init", default=None, help="fine-tune from this model (e.g. default)")
    p.add_argument("--preset", default="compact", help="architecture for a new model: " + "; ".join(
        f"{', '.join(names)} ({method} method)" for method, names in presets.items()))
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="optimisation steps (default 1000)")
    length.add_argument("--epochs", type=float, default=None, help="passes over all triplets and crops")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=None, help="crop size (pixels; default 128, blur-code presets 64)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-4, blur-code presets 1e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--focus", nargs="+", type=plane_index, default=None, metavar="PLANE",
                   help="blur-code and care presets: in-focus plane of each training stack, or one for all (default: "
                        "the sharpest by variance of the Laplacian)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    add_common(p, model=False)
    for cls in list_methods():
        if cls.train_presets:
            cls.add_train_arguments(p)


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
        check_two_planes(stack, cls.name, args.input)
    method = load_method(cls.name, args.model, args.device)
    params = params_from_args(args, method.default_params())
    bar = ProgressLine(f"{cls.name} on {method.device_name}")
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
    from .methods import PAIR, list_methods

    for cls in list_methods():
        kind = "pair of planes (B, C) of a z-stack" if cls.input == PAIR else "single plane"
        print(f"{cls.name:<20}{kind:<38}{cls.description}")
        print(f"{'':<20}weights: {cls.weights_source()}")
    return 0


def _cmd_batch(args) -> int:
    from .batch import (
        FAILED,
        Spec,
        connect,
        count_planes,
        file_progress,
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
        line, report = ProgressLine(every=5), file_progress(len(jobs), sum(expected.values()))
        results = run_batch(jobs, spec, client,
                            lambda r: line.update(report(r, expected[r.file]), force=r.status == FAILED))
        line.close()
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and args.scheduler == "local":
            cluster.close()
    report = write_report(args.output, results)
    print(summary(results, time.perf_counter() - t0))
    print(f"report: {report}", file=sys.stderr)
    return 1 if any(r.status == FAILED for r in results) else 0


def _cmd_train(args) -> int:
    from .io import read_stack
    from .methods import list_methods
    from .models import read_card

    trainers = {preset: cls for cls in list_methods() for preset in cls.train_presets}
    if args.preset not in trainers:
        raise InputError(f"unknown preset {args.preset!r}; pass one of {', '.join(trainers)}")
    stacks = [read_stack(s, channel=args.channel, field=args.field, axes=args.axes) for s in args.stacks]
    bar = ProgressLine(args.preset)
    last = None
    for progress in trainers[args.preset].train_from_args(stacks, args):
        bar.update(progress)
        last = progress
    bar.close()
    if last is not None:
        print(f"saved {args.output} after {last.done} steps on {last.device}", file=sys.stderr)
    else:
        card = read_card(args.output)
        print(f"{args.output} is already trained ({card.steps_done} of {card.steps_planned} steps, the same "
              f"recipe and data); nothing to do. Pass more --steps to train further, or --overwrite to start "
              f"again", file=sys.stderr)
    return 0


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


COMMANDS = {"restore": _cmd_restore, "methods": _cmd_methods, "batch": _cmd_batch, "train": _cmd_train,
            "models": _cmd_models, "view": _cmd_view}


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
