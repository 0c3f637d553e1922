"""What every restoration method is: a name, the input it needs, typed parameters, and a generator that runs it.

A method is a subclass of :class:`Method` with

* ``name`` (the ``--method`` value), ``description`` (one line) and ``input`` (:data:`PAIR`: a sharper
  plane B and a blurrier plane C of one z-stack; :data:`PLANE`: a single plane);
* ``Params``: a frozen dataclass whose fields are declared with :func:`param`. Defaults, ranges, choices
  and help live there only; the command line options (:mod:`latent_focus.methods.options`) and the napari
  form (:mod:`latent_focus.napari.method_form`) are generated from it;
* ``load(model, device)``: builds the method with its weights. :func:`latent_focus.methods.load_method`
  calls it once per process for each (method, model, device);
* ``restore(stack, plane, params, partner=None)``: a generator that yields :class:`Progress` and returns a
  :class:`Restored`. Closing the generator cancels it.

:func:`latent_focus.progress.run` (also :func:`latent_focus.methods.run`) exhausts such a generator synchronously.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError
from ..io import Stack
from ..progress import Progress

PAIR = "pair"
PLANE = "plane"


@dataclass
class Restored:
    """A restored plane in the input's intensity units, and what produced it (written into output metadata)."""

    image: np.ndarray
    info: dict = field(default_factory=dict)


def parse_auto_number(text, kind=float):
    """A ``parse`` for :func:`param`: ``"auto"`` (or nothing) -> None, else a finite number of ``kind``."""
    if text in (None, "", "auto"):
        return None
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise InputError(f"expected 'auto' or a number; got {text!r}") from None
    if not math.isfinite(value):
        raise InputError(f"expected a finite number; got {text!r}")
    return value


def param(default: Any, help: str, *, min: float | None = None, max: float | None = None,
          choices: tuple | None = None, step: float | None = None, label: str | None = None,
          parse=None) -> Any:
    """A :class:`Params` field: its default, help text, and the range or choices it accepts.

    ``parse(text) -> value`` turns command-line text into a value where the field's type cannot (e.g.
    ``"model"`` or a number); it must raise :class:`InputError` for bad text.
    """
    meta = {"help": help, "min": min, "max": max, "choices": choices, "step": step, "label": label, "parse": parse}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Params:
    """Base of every method's parameters. Subclasses are frozen dataclasses of :func:`param` fields."""

    @classmethod
    def specs(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check_value(f, getattr(self, f.name))

    def replace(self, **changes) -> "Params":
        """A copy with ``changes`` applied and checked (:class:`InputError` naming the bad field)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"unknown parameter(s) {', '.join(sorted(unknown))}; "
                             f"pass one of {', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_value(f: dataclasses.Field, value):
    """Raise :class:`InputError` when ``value`` is outside field ``f``'s range or choices."""
    meta, flag = f.metadata, "--" + f.name.replace("_", "-")
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise InputError(f"{flag} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InputError(f"{flag} must be a finite number; got {value}")
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = f"from {lo} to {hi}" if lo is not None and hi is not None else (
                f"at least {lo}" if lo is not None else f"at most {hi}")
            raise InputError(f"{flag} must be {span}; got {value}")
    return value


class Method:
    """Base of every restoration method; see the module docstring for what a subclass provides."""

    name: ClassVar[str]
    description: ClassVar[str]
    input: ClassVar[str]  # PAIR or PLANE
    Params: ClassVar[type[Params]]
    #: whether ``load`` takes a model (``--model``): a model name, or a model folder
    uses_model: ClassVar[bool] = False
    #: the preset family (``models.PRESETS[preset].family``) of the models this method loads; the panel lists
    #: only those models
    model_family: ClassVar[str] = ""
    #: the ``latent-focus train --preset`` values that train this method's models
    train_presets: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def load(cls, model: str | None = None, device: str = "auto") -> "Method":
        """The method ready to run; methods with weights load them here (once per process, see the registry)."""
        return cls()

    @classmethod
    def weights_source(cls) -> str:
        """Where this method's weights or model come from, for ``latent-focus methods``."""
        return "no weights"

    @classmethod
    def commands(cls) -> list:
        """Extra ``latent-focus`` subcommands of this method (:class:`latent_focus.methods.options.Command`)."""
        return []

    @classmethod
    def add_train_arguments(cls, parser) -> None:
        """Add the ``latent-focus train`` options that only this method's :attr:`train_presets` read."""

    @classmethod
    def train_from_args(cls, stacks, args) -> Generator:
        """Train one of :attr:`train_presets` from ``latent-focus train``'s ``args``: a generator of
        :class:`latent_focus.progress.Progress`."""
        raise NotImplementedError(f"{cls.name} trains no models")

    @property
    def device_name(self) -> str:
        return "cpu"

    def default_params(self) -> Params:
        """The parameters this instance starts from (a model may carry calibrated values)."""
        return self.Params()

    def restore(self, stack: Stack, plane: int, params: Params,
                partner: int | None = None) -> Generator[Progress, None, Restored]:
        """Restore ``plane`` of ``stack`` (with ``partner``, the blurrier plane C, for pair methods)."""
        raise NotImplementedError

    def extra_scores(self, stacks: list[Stack], focus: list[int]) -> dict[str, float]:
        """Scores of this method's own that ``latent-focus evaluate --method`` prints beside its deblurring
        (stacks with their in-focus planes); none by default."""
        return {}

    def restore_planes(self, stack: Stack, planes: list[int], params: Params) -> Generator[Progress, None, list]:
        """Restore each of ``planes``; returns one :class:`Restored` per plane.

        Single-plane methods restore each plane on its own. Pair methods override this to pick each
        plane's partner (see :mod:`latent_focus.focus`) and to share work between neighbouring planes.
        """
        results = []
        for k, p in enumerate(planes):
            sub = self.restore(stack, p, params)
            results.append((yield from _scaled(sub, k, len(planes), f"plane {p}")))
        return results


def _scaled(gen: Generator, k: int, n: int, what: str) -> Generator[Progress, None, Any]:
    """Forward ``gen``'s progress as part ``k`` of ``n`` (in units of 1/100 of a part); return its result."""
    with _closing(gen):
        try:
            while True:
                p = next(gen)
                frac = p.done / p.total if p.total else 0.0
                yield Progress(int(100 * (k + frac)), 100 * n, f"{what}: {p.message}" if p.message else what)
        except StopIteration as stop:
            yield Progress(100 * (k + 1), 100 * n, what)
            return stop.value


class _closing:
    def __init__(self, gen):
        self.gen = gen

    def __enter__(self):
        return self.gen

    def __exit__(self, *exc):
        self.gen.close()
        return False
