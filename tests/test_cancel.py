"""Cancel stops every method within one tile or iteration: each yields between its units of work, and closing
its generator there leaves the rest undone. Counted, not timed: a loaded machine must not make this flaky."""

import numpy as np
import pytest

from latent_focus.io import Stack
from latent_focus.methods import list_methods
from latent_focus.methods.psf_rl import deconvolve
from latent_focus.optics import deconvolution

#: per method: parameters that make one 288 x 288 plane many units of work (tiles, iterations), and where one
#: unit of work is done: (the object, the name of what it calls once per unit)
WORK = {
    "latent": ({"tile": 128}, lambda m: [(m.engine.model, "encode"), (m.engine.model, "decode")]),
    "blur-code": ({"tile": 128}, lambda m: [(m.engine.model, "encode"), (m.engine.model, "decode")]),
    "analysis-synthesis": ({"tile": 128, "window": 128}, lambda m: [(m.pair, "_residual")]),
    "care": ({"tile": 128}, lambda m: [(m.net, "_residual")]),
    "richardson-lucy": ({"tile": 64, "overlap": 16, "iterations": 3, "optics": (0.75, 0.52), "defocus": 1.0},
                        lambda m: [(deconvolution, "kernel_otf")]),
    "psf-rl": ({"tile": 64, "iterations": 6, "defocus": 1.0, "target": "object"},
               lambda m: [(deconvolve.TiledBlur, "forward")]),
}


@pytest.fixture(scope="module")
def big_stack(blurred_stack) -> Stack:
    return Stack(np.tile(blurred_stack, (1, 3, 3)), pixel_size_um=0.1, source="big.tif")


def _counting(monkeypatch, targets) -> list[int]:
    calls = [0]
    for owner, name in targets:
        fn = getattr(owner, name)

        def counted(*args, _fn=fn, **kwargs):
            calls[0] += 1
            return _fn(*args, **kwargs)
        monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.mark.parametrize("cls", list_methods(), ids=lambda c: c.name)
def test_cancel_stops_within_one_unit_of_work(cls, method_models, big_stack, monkeypatch):
    params, where = WORK[cls.name]
    method = cls.load(method_models.get(cls.name), "cpu")
    calls = _counting(monkeypatch, where(method))
    params = method.default_params().replace(**params)
    yields = sum(1 for _ in method.restore(big_stack, 3, params))
    units = calls[0]
    assert units >= 6 and yields >= units  # at least one yield per tile or iteration

    calls[0] = 0
    gen = method.restore(big_stack, 3, params)
    while calls[0] == 0:  # up to the first report after work has started
        next(gen)
    started = calls[0]
    gen.close()
    assert started <= 2 < units and calls[0] == started
    with pytest.raises(StopIteration):
        next(gen)


def test_every_method_is_covered():
    assert {cls.name for cls in list_methods()} == set(WORK)
