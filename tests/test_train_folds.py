"""scripts/train_folds.py: fold runs, their snapshots and the out-of-fold learning curve, end to end (tiny pair)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def train_folds():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import train_folds
        yield train_folds
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def _corpus(root: Path, blurred_stack: np.ndarray) -> Path:
    for i, fold in enumerate("AABB"):
        folder = root / f"series{i}"
        folder.mkdir(parents=True)
        tifffile.imwrite(folder / "stack.tif", np.roll(blurred_stack[:5, :64, :64], 9 * i, axis=2))
        (folder / "meta.json").write_text(json.dumps({"series": f"series{i}", "modality": "widefield",
                                                      "fold": fold, "focus_plane": 0}))
    return root


def test_fold_runs_keep_snapshots_and_each_series_is_scored_by_the_other_folds_model(train_folds, blurred_stack,
                                                                                      tmp_path, capsys, monkeypatch):
    from latent_focus.io import Normalizer, read_stack
    from latent_focus.methods import load_method, run
    from latent_focus.metrics import psnr
    from latent_focus.models import read_card

    corpus, out = _corpus(tmp_path / "corpus", blurred_stack), tmp_path / "runs"
    tifffile.imwrite(tmp_path / "content.tif", blurred_stack[:1])
    train_folds.main([str(corpus), str(out), "--method", "analysis-synthesis", "--steps", "2", "--jobs", "2",
                      "--snapshot-every", "2", "--", "--content", str(tmp_path / "content.tif"),
                      "--preset", "analysis-synthesis-tiny", "--crop", "48", "--batch-size", "2", "--settings", "4",
                      "--seed", "0"])
    for fold, n in (("A", 2), ("B", 2), ("all", 4)):
        card = read_card(out / f"analysis-synthesis_{fold}")
        assert card.steps_done == 2 and len(card.training["real_series"]) == n
        assert (out / f"analysis-synthesis_{fold}" / "snapshots" / "step_00002.pt").is_file()
    curve = json.loads((out / "analysis-synthesis_curve.json").read_text())
    assert [r["steps"] for r in curve] == [2] and curve[0]["planes"] >= 16 and np.isfinite(curve[0]["widefield"])
    assert "| 2 |" in capsys.readouterr().out
    with monkeypatch.context() as m:  # scored after the snapshots were kept: not scored again
        m.setattr(train_folds.single_plane_oof, "main", lambda argv: pytest.fail("scored again"))
        train_folds.main([str(corpus), str(out), "--method", "analysis-synthesis", "--steps", "2", "--curve-only"])
    assert json.loads((out / "analysis-synthesis_curve.json").read_text()) == curve
    # a fold-B series is scored by the model trained on fold A
    rows = json.loads((out / "curve" / "analysis-synthesis_00002.json").read_text())["rows"]
    row = next(r for r in rows if r["series"] == "series2" and r["plane"] == 3)
    stack = read_stack(corpus / "series2" / "stack.tif")
    method = load_method("analysis-synthesis", str(out / "curve" / "analysis-synthesis_A_00002"), "cpu")
    restored = [r.image for r in run(method.restore_planes(stack, [3], method.default_params()))][0]
    norm = Normalizer.from_data(stack.data)
    assert row["oof_psnr"] == pytest.approx(psnr(norm.normalize(stack.data[0]), norm.normalize(restored)), abs=1e-6)


def test_a_corpus_without_both_folds_is_refused(train_folds, blurred_stack, tmp_path):
    corpus = _corpus(tmp_path / "corpus", blurred_stack)
    for i in (2, 3):
        meta = json.loads((corpus / f"series{i}" / "meta.json").read_text())
        (corpus / f"series{i}" / "meta.json").write_text(json.dumps({**meta, "fold": "A"}))
    with pytest.raises(SystemExit, match="both folds"):
        train_folds.main([str(corpus), str(tmp_path / "runs"), "--method", "care", "--steps", "2"])
    assert not (tmp_path / "runs").exists()


def test_runs_chooses_which_runs_train(train_folds, blurred_stack, tmp_path):
    corpus, out = _corpus(tmp_path / "corpus", blurred_stack), tmp_path / "runs"
    tifffile.imwrite(tmp_path / "content.tif", blurred_stack[:1])
    train_folds.main([str(corpus), str(out), "--method", "analysis-synthesis", "--steps", "1", "--jobs", "2",
                      "--snapshot-every", "1", "--runs", "A", "B", "--", "--content", str(tmp_path / "content.tif"),
                      "--preset", "analysis-synthesis-tiny", "--crop", "48", "--batch-size", "2", "--settings", "4"])
    assert (out / "analysis-synthesis_A" / "weights.pt").is_file()
    assert (out / "analysis-synthesis_B" / "weights.pt").is_file()
    assert not (out / "analysis-synthesis_all").exists()
    assert [r["steps"] for r in json.loads((out / "analysis-synthesis_curve.json").read_text())] == [1]
