"""What every registered method promises, checked for each of ``list_methods()`` on a small stack: a float32
plane of the input's shape in the input's intensity units, the provenance its output file records, Cancel, and
a bad option refused by the command line with exit code 2 and one line."""

import json

import numpy as np
import pytest
import tifffile

from latent_focus.cli import EXIT_BAD_INPUT, main
from latent_focus.io import Stack, read_provenance
from latent_focus.methods import PAIR, list_methods, run
from latent_focus.provenance import write_result

METHODS = list_methods()
OFFSET = 5000.0  # a camera offset: an output left in normalised units would sit far below it


@pytest.fixture(scope="module")
def stack(blurred_stack) -> Stack:
    return Stack(blurred_stack + OFFSET, z_um=np.arange(len(blurred_stack)) * 0.5, pixel_size_um=0.1,
                 source="series.tif")


@pytest.fixture(scope="module")
def restored(method_models, stack) -> dict:
    """Plane 3 of the stack restored by each method with its defaults (and its test model)."""
    out = {}
    for cls in METHODS:
        method = cls.load(method_models.get(cls.name), "cpu")
        out[cls.name] = run(method.restore(stack, 3, method.default_params()))
    return out


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_output_is_a_float32_plane_in_input_units(cls, restored, stack):
    image = restored[cls.name].image
    plane = stack.data[3]
    assert image.shape == plane.shape and image.dtype == np.float32 and np.isfinite(image).all()
    lo, hi = np.percentile(plane, [1, 99])
    assert abs(float(np.median(image)) - float(np.median(plane))) < 0.25 * (hi - lo)


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_output_file_records_its_provenance(cls, restored, stack, tmp_path):
    result = restored[cls.name]
    assert result.info["method"] == cls.name and result.info["plane"] == 3
    params = cls.Params()
    record = read_provenance(write_result(tmp_path / "out.tif", [result], stack, params, single=True))
    assert {"software", "source", "method", "parameters", "planes"} <= set(record)
    assert record["method"] == cls.name and record["parameters"] == json.loads(json.dumps(params.as_dict()))
    assert record["planes"]["plane"] == 3


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_closing_the_generator_cancels(cls, method_models, stack):
    method = cls.load(method_models.get(cls.name), "cpu")
    gen = method.restore(stack, 3, method.default_params())
    next(gen)
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)


def _bad_option(cls) -> tuple[str, str]:
    """A ``--option VALUE`` of ``cls`` that its parameters refuse: outside a range, or not one of the choices."""
    for f in cls.Params.specs():
        meta = f.metadata
        if meta.get("choices") is not None:
            return "--" + f.name.replace("_", "-"), "not-a-choice"
        if meta.get("min") is not None and meta.get("parse") is None:
            return "--" + f.name.replace("_", "-"), str(meta["min"] - 1)
    raise AssertionError(f"{cls.name} has no option with a range or choices")


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_a_bad_option_exits_2_with_one_line(cls, stack, tmp_path, capsys):
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack.data, metadata={"axes": "ZYX"})
    option, value = _bad_option(cls)
    plane = ["--planes", "3", "4"] if cls.input == PAIR else ["--plane", "3"]
    argv = ["restore", str(source), "-o", str(tmp_path / "out.tif"), "--method", cls.name, *plane, option, value]
    try:
        code = main(argv)
    except SystemExit as exc:  # refused by argparse itself (a choice), before main returns
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT and len(err) == 1 and option in err[0], err
    assert not (tmp_path / "out.tif").exists()
