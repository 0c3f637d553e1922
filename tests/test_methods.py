"""The restoration-method interface: registry, typed parameters, generated options, synchronous generators."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest

from latent_focus.errors import InputError
from latent_focus.io import Stack
from latent_focus.methods import PAIR, PLANE, Progress, Restored, get_method, list_methods, load_method, run
from latent_focus.methods.latent import LatentParams
from latent_focus.methods.options import add_params, params_from_args


def test_registry_lists_the_methods_with_their_input_and_params():
    methods = {m.name: m for m in list_methods()}
    assert {"latent", "richardson-lucy"} <= set(methods)
    assert methods["latent"].input == PAIR and methods["richardson-lucy"].input == PLANE
    for m in methods.values():
        assert m.description and m.weights_source() and m.Params().as_dict() == m.Params().as_dict()
        for f in m.Params.specs():  # defaults, ranges and help live in one place
            assert f.metadata["help"], (m.name, f.name)
    with pytest.raises(InputError, match="unknown method 'magic'"):
        get_method("magic")


def test_params_are_frozen_and_checked():
    p = get_method("richardson-lucy").Params()
    with pytest.raises(Exception):
        p.iterations = 3
    assert p.replace(iterations=3).iterations == 3
    with pytest.raises(InputError, match="--iterations must be from 0 to 1000"):
        p.replace(iterations=-1)
    with pytest.raises(InputError, match="strength"):
        LatentParams(strength="max")
    with pytest.raises(InputError, match="unknown parameter"):
        p.replace(nonsense=1)


def test_command_line_options_come_from_params():
    parser = argparse.ArgumentParser()
    add_params(parser, LatentParams)
    args = parser.parse_args(["--strength", "0.5", "--alpha", "0.25"])
    params = params_from_args(args, LatentParams())
    assert params == LatentParams(alpha=0.25, strength="0.5")
    untouched = params_from_args(parser.parse_args([]), LatentParams(strength="model"))
    assert untouched.strength == "model"  # options not given keep the method's own defaults
    assert "default: auto" in parser.format_help()


def _stack(blurred_stack) -> Stack:
    return Stack(blurred_stack, np.arange(7, dtype=float) * 0.5)


def test_generators_run_synchronously_without_qt(tiny_model, blurred_stack):
    method = load_method("latent", str(tiny_model), "cpu")
    seen = []
    result = run(method.restore(_stack(blurred_stack), 2, LatentParams(strength="1"), partner=3), seen.append)
    assert isinstance(result, Restored) and result.image.shape == (96, 96)
    assert all(isinstance(p, Progress) for p in seen) and seen[-1].done == seen[-1].total
    assert result.info["alpha"] == pytest.approx(1 - 1.0 / 1.5, abs=1e-6) and result.info["rule"] == "Eq. 2 exactly"
    every = run(method.restore_planes(_stack(blurred_stack), [0, 1, 6], LatentParams()))
    assert [r.info.get("planes") for r in every][0] == [0]  # plane 0 is the sharpest: kept as it is
    assert "no blurrier neighbour" in every[2].info["end_of_stack"]


def test_closing_a_generator_cancels_it(tiny_model, blurred_stack):
    method = load_method("latent", str(tiny_model), "cpu")
    gen = method.restore_planes(_stack(blurred_stack), list(range(7)), LatentParams())
    first = next(gen)
    gen.close()
    assert first.done == 1
    with pytest.raises(StopIteration):
        next(gen)


def test_weights_load_once_per_process(tiny_model):
    assert load_method("latent", str(tiny_model), "cpu") is load_method("latent", str(tiny_model), "cpu")
    assert load_method("richardson-lucy") is load_method("richardson-lucy")


def test_alpha_without_z_positions_uses_plane_indices_and_says_so(tiny_model, blurred_stack):
    method = load_method("latent", str(tiny_model), "cpu")
    result = run(method.restore(Stack(blurred_stack), 2, LatentParams(strength="1"), partner=4))
    assert result.info["alpha"] == pytest.approx(1 - 2 / 4) and "plane indices" in result.info["note"]


def test_training_leaves_the_callers_config_alone(tmp_path, tiny_model, blurred_stack):
    from latent_focus.methods.latent.training import TrainConfig, train

    config = TrainConfig(preset="paper", steps=2, epochs=0.001, batch_size=2, crop=64, device="cpu",
                         val_fraction=0.0)
    before = TrainConfig(**vars(config))
    list(train([blurred_stack], tmp_path / "ft", config, init=tiny_model))
    assert config == before  # before: train() set config.preset and config.steps


def test_view_without_napari_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['napari'] = None; from latent_focus.cli import main; "
            "sys.exit(main(['view']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == ["latent-focus view: error: napari is not installed; install it "
                                               "with: pip install 'napari[pyqt6]'"]


@pytest.mark.parametrize("name", [cls.name for cls in list_methods()])
def test_option_help_names_each_default_once_as_typed(name):
    from latent_focus.methods.options import describe

    for f in get_method(name).Params.specs():
        text = describe(f)
        assert text.count("default") - text.count("default rule") <= 1, text
        assert "default: None" not in text and "default: ()" not in text and not text.endswith("default: "), text
