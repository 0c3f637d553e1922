"""Adapting a model to one stack: the generator, its model folder and card, cancelling, bad input, the command."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch

from latent_focus.engine import LatentFocus
from latent_focus.errors import InputError
from latent_focus.io import Stack
from latent_focus.methods.latent.adapt import adapt
from latent_focus.models import find_model, load_model, read_card
from latent_focus.progress import Progress


def test_adapt_writes_a_model_whose_card_says_what_it_was_adapted_from(tiny_model, blurred_stack, tmp_path):
    out = tmp_path / "adapted"
    stack = Stack(blurred_stack, None, None, blurred_stack.dtype, "blobs.tif")
    reports = list(adapt(stack, out, tiny_model, minutes=5, steps=3, focus=0, device="cpu"))
    assert [p.done for p in reports] == [1, 2, 3]
    assert all(isinstance(p, Progress) and p.total == 3 and np.isfinite(p.losses["total"]) for p in reports)
    assert reports[-1].finished and not reports[0].finished and "extrap" in reports[-1].losses

    card = read_card(out)
    base = read_card(tiny_model)
    adapted = card.extra["adapted"]
    assert adapted["from"] == base.name or adapted["from"] == tiny_model.name
    assert adapted["from_weights_sha256"] == base.weights_sha256
    assert adapted["stack"] == "blobs.tif" and adapted["steps"] == 3 and adapted["focus"] == 0
    assert card.training["fine_tuned_from"]["weights_sha256"] == base.weights_sha256
    assert "adapted to blobs.tif" in card.description and card.preset == base.preset
    # a normal model folder: the engine loads it, and its weights differ from the base model's
    engine = LatentFocus(str(out), "cpu")
    assert engine.name == "adapted"
    before, _ = load_model(tiny_model)
    after, _ = load_model(out)
    assert any(not torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))


def test_adapt_uses_only_the_planes_and_rows_it_is_given(tiny_model, blurred_stack, tmp_path):
    out = tmp_path / "held-out"
    list(adapt(blurred_stack, out, tiny_model, steps=1, focus=0, planes=[0, 4, 5, 6], rows=(0, 64), device="cpu"))
    adapted = read_card(out).extra["adapted"]
    assert adapted["planes"] == [0, 4, 5, 6] and adapted["rows"] == [0, 64]
    assert adapted["triplets"] == 4  # (0,4,5) (0,4,6) (0,5,6) (4,5,6): none with planes 1-3


def test_closing_the_generator_cancels_and_writes_nothing(tiny_model, blurred_stack, tmp_path):
    out = tmp_path / "cancelled"
    gen = adapt(blurred_stack, out, tiny_model, minutes=5, focus=0, device="cpu")
    first = next(gen)
    assert first.done == 1 and first.total >= 1
    gen.close()
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"minutes": 0}, "positive number of minutes"),
    ({"minutes": float("nan")}, "positive number of minutes"),
    ({"planes": [0, 3]}, "at least three planes on one side of focus"),
    ({"rows": (40, 20)}, "rows (40, 20) lie outside"),
])
def test_bad_input_is_refused_before_any_work(tiny_model, blurred_stack, tmp_path, kwargs, message):
    out = tmp_path / "never"
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        next(adapt(blurred_stack, out, tiny_model, focus=0, device="cpu", **kwargs))
    assert not out.exists()


def test_adapt_never_writes_over_a_model(tiny_model, blurred_stack, tmp_path):
    with pytest.raises(InputError, match="is the model being adapted"):
        next(adapt(blurred_stack, tiny_model, tiny_model, focus=0, device="cpu"))
    with pytest.raises(InputError, match="no autoencoder of the latent method"):
        next(adapt(blurred_stack, tmp_path / "as", "analysis-synthesis", focus=0, device="cpu"))
    with pytest.raises(InputError, match="inside the shipped models"):
        next(adapt(blurred_stack, find_model(None) / "copy", tiny_model, focus=0, device="cpu"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    with pytest.raises(InputError, match="already exists"):
        next(adapt(blurred_stack, tmp_path / "taken", tiny_model, focus=0, device="cpu"))
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep"


def test_adapt_command_writes_a_model_and_refuses_bad_input_in_one_line(tiny_model, blurred_stack, tmp_path):
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, blurred_stack)
    out = tmp_path / "mine"
    cmd = [sys.executable, "-m", "latent_focus.cli", "adapt", str(stack), "-o", str(out), "--model", str(tiny_model),
           "--device", "cpu", "--focus", "0"]
    proc = subprocess.run([*cmd, "--minutes", "0.02"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"saved {out}" in proc.stderr and read_card(out).extra["adapted"]["stack"] == str(stack)
    again = subprocess.run([*cmd, "--minutes", "0.02"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already exists" in again.stderr.splitlines()[-1]
    bad = subprocess.run([*cmd[:6], str(tmp_path / "other"), *cmd[7:], "--minutes", "-1"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "positive number of minutes" in bad.stderr.splitlines()[-1] and not (tmp_path / "other").exists()


def test_adapt_saves_a_name_in_the_models_folder_and_prints_a_model_value_that_works_anywhere(
        tiny_model, blurred_stack, tmp_path, monkeypatch, capsys):
    from latent_focus.cli import main

    monkeypatch.setenv("LATENT_FOCUS_MODELS", str(tmp_path / "models"))
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, blurred_stack)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    base = ["adapt", str(stack), "--model", str(tiny_model), "--device", "cpu", "--focus", "0", "--minutes", "0.01"]
    printed = {}
    for output in ("mine", "./here"):
        assert main([*base, "-o", output]) == 0
        printed[output] = re.search(r"--model (\S+)$", capsys.readouterr().err.strip()).group(1)
    assert not (work / "mine").exists() and read_card(tmp_path / "models" / "mine").extra["adapted"]
    assert printed == {"mine": "user:mine", "./here": str(work / "here")}
    monkeypatch.chdir(tmp_path)
    assert find_model(printed["mine"]) == tmp_path / "models" / "mine"
    assert find_model(printed["./here"]) == work / "here"
