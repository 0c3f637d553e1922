"""Command-line options made from a method's ``Params``, and the extra subcommands a method may add.

Each :func:`~latent_focus.methods.base.param` field becomes ``--field-name``; its type, range, choices and
help come from the field, so no default is written twice. Options a user does not give keep the value of
the method's own defaults (which a model card may have calibrated).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from ..device import DEVICE_CHOICES
from ..errors import InputError
from ..io import check_axes
from .base import Params, check_value


@dataclass(frozen=True)
class Command:
    """A ``latent-focus`` subcommand contributed by a method: its name, help, arguments and runner.

    ``run(args)`` returns the exit code; it raises :class:`InputError` for bad input (exit 2, one line).
    ``description`` (default: ``help``) heads the subcommand's own ``--help``.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""


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


def add_common(p: argparse.ArgumentParser, model: bool = True) -> None:
    """``--model`` (optional), ``--device``, ``--channel``, ``--field``, ``--axes``: how a command reads its input."""
    if model:
        p.add_argument("--model", "-m", default=None,
                       help="model folder or name (default: the shipped default model)")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="compute device: auto tries cuda, then mps, then cpu")
    p.add_argument("--channel", type=int, default=None, help="channel of a (z, c, y, x) stack")
    p.add_argument("--field", default=None, help="field name when a folder holds several")
    add_axes(p)


def check_two_planes(stack, what: str, source: str) -> None:
    """Pair methods need a z-stack; a single plane is for the single-plane methods."""
    if stack.n_planes < 2:
        raise InputError(f"{what} needs a z-stack of at least two planes; {source} holds one plane. Restore a "
                         "single plane with latent-focus restore --method psf-rl|analysis-synthesis")


def add_axes(parser: argparse.ArgumentParser) -> None:
    """``--axes``: the input files' axes where their own are missing or wrong (:func:`latent_focus.io.read_stack`)."""
    parser.add_argument("--axes", type=argument_type(check_axes), default=None, metavar="AXES",
                        help="the input file's axes in order, one letter per dimension from z, c, y, x (e.g. zyx, "
                             "zcyx) where the file's own are missing or wrong: a stack of 3 or 4 planes saved by "
                             "plain tifffile.imwrite reads as colour channels without --axes zyx")


def flag(f: dataclasses.Field) -> str:
    return "--" + f.name.replace("_", "-")


def _dest(f: dataclasses.Field) -> str:
    return f"param__{f.name}"


def argument_type(parse):
    """``parse`` as an argparse type: its :class:`InputError` message becomes argparse's one-line error."""
    def convert(text: str):
        try:
            return parse(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _converter(f: dataclasses.Field):
    """Text -> value for field ``f``: its ``parse``, else the type of its default."""
    parse = f.metadata.get("parse")
    if parse is not None:
        return argument_type(parse)
    kind = type(f.default)
    if kind is bool:
        return None
    if kind not in (int, float, str):
        raise TypeError(f"field {f.name} needs a parse function in its metadata")

    def convert(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
    convert.__name__ = kind.__name__
    return convert


def describe(f: dataclasses.Field) -> str:
    """The field's help with its default and range, as shown by ``--help`` and as widget tooltips."""
    meta = f.metadata
    bits = [meta.get("help", "")]
    if meta.get("choices") is not None:
        bits.append("one of " + ", ".join(map(str, meta["choices"])))
    elif meta.get("min") is not None or meta.get("max") is not None:
        lo, hi = meta.get("min"), meta.get("max")
        bits.append(f"from {lo} to {hi}" if lo is not None and hi is not None else
                    (f"at least {lo}" if lo is not None else f"at most {hi}"))
    default = f.default
    if default not in (None, "", ()):  # an empty default is described by the help itself
        bits.append(f"default: {'on' if default is True else 'off' if default is False else default}")
    return "; ".join(b for b in bits if b)


def add_params(parser: argparse.ArgumentParser, params: type[Params], title: str | None = None) -> None:
    """Add one option per field of ``params`` to ``parser`` (in a group named ``title``)."""
    group = parser.add_argument_group(title) if title else parser
    for f in params.specs():
        if type(f.default) is bool and f.metadata.get("parse") is None:
            group.add_argument(flag(f), dest=_dest(f), action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=describe(f))
            continue
        choices = f.metadata.get("choices")
        group.add_argument(flag(f), dest=_dest(f), type=_converter(f), default=argparse.SUPPRESS,
                           choices=choices, metavar=None if choices else f.name.upper(), help=describe(f))


def params_from_args(args: argparse.Namespace, base: Params) -> Params:
    """``base`` with the options given on the command line applied (and checked)."""
    given = {f.name: getattr(args, _dest(f)) for f in base.specs() if hasattr(args, _dest(f))}
    for f in base.specs():
        if f.name in given:
            check_value(f, given[f.name])
    try:
        return base.replace(**given)
    except TypeError as exc:  # a value of the wrong kind reached the dataclass
        raise InputError(str(exc)) from None
