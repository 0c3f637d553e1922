"""The shape of the code: small classes, a panel that names no method, sections registered on the napari side."""

from __future__ import annotations

import ast
from pathlib import Path

from latent_focus.methods import list_methods
from latent_focus.methods.base import Method

SRC = Path(__file__).resolve().parents[1] / "src" / "latent_focus"
NAPARI = SRC / "napari"
MAX_CLASS_LINES = 300


def _trees(folder: Path):
    for path in sorted(folder.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def test_no_class_is_longer_than_300_lines():
    """Before: the panel was one class of 808 lines."""
    long = [f"{path.relative_to(SRC)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, tree in _trees(SRC) for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES]
    assert not long


def _method_name_comparisons(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines comparing with a method name: ``x == "latent"``, ``x in ("latent", ...)``, and the like."""
    def named(node) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(named(e) for e in node.elts)
        return False

    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Compare) and any(named(part) for part in (node.left, *node.comparators))]


def test_the_shared_napari_modules_compare_with_no_method_name():
    """Before: the panel tested ``name == "latent"`` in four places. What differs per method comes from the method
    class or from its section."""
    names = {cls.name for cls in list_methods()}
    shared = [(path, tree) for path, tree in _trees(NAPARI) if "sections" not in path.relative_to(NAPARI).parts]
    assert {p.name for p, _ in shared} >= {"panel.py", "pickers.py", "jobs.py", "training_dock.py"}
    found = {str(path.relative_to(SRC)): lines for path, tree in shared
             if (lines := _method_name_comparisons(tree, names))}
    assert not found


def test_the_check_finds_method_name_comparisons():
    names = {"latent", "psf-rl"}
    code = 'a == "latent"\nif m.name in ("x", "psf-rl"): pass\nb = "latent"\nc != "other"\n'
    assert _method_name_comparisons(ast.parse(code), names) == [1, 2]


def test_sections_are_registered_on_the_napari_side_by_method_class_names():
    """Before: methods named their UI module in an import string loaded with importlib."""
    from latent_focus.napari.sections import SECTIONS
    from latent_focus.napari.sections.base import Section

    assert set(SECTIONS) <= {cls.name for cls in list_methods()}
    assert all(issubclass(cls, Section) for cls in SECTIONS.values())
    assert not hasattr(Method, "napari_section")
    registry = ast.parse((NAPARI / "sections" / "__init__.py").read_text())
    keys = [k for node in ast.walk(registry) if isinstance(node, ast.Dict) for k in node.keys]
    assert keys and all(isinstance(k, ast.Attribute) and k.attr == "name" for k in keys)  # Class.name, no literals
    for path, tree in _trees(SRC):
        assert "importlib" not in {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}, path


def test_the_napari_side_imports_only_the_public_names_of_method_packages():
    """``from ...methods.latent import X``, never ``from ...methods.latent.jobs import X``."""
    packages = {p.name for p in (SRC / "methods").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    private = []
    for path, tree in _trees(NAPARI):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.lstrip(".").startswith("methods."):
                parts = node.module.lstrip(".").split(".")
                if parts[1] in packages and len(parts) > 2:
                    private.append(f"{path.relative_to(SRC)}: from {node.module}")
    assert not private


def test_one_coalescing_runner_serves_both_sliders(make_napari_viewer, qtbot):
    """Before: the live slider and the blur-code slider each had their own copy of the same runner."""
    from latent_focus.napari.coalescing import CoalescingRunner

    classes = [node.name for _, tree in _trees(NAPARI) for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    assert classes.count("CoalescingRunner") == 1 and "LiveDecoder" not in classes
    uses = [path.name for path, tree in _trees(NAPARI / "sections")
            if any(isinstance(n, ast.Name) and n.id == "CoalescingRunner" for n in ast.walk(tree))]
    assert sorted(uses) == ["blur_code.py", "live.py"]
    done = []
    runner = CoalescingRunner(lambda r: r * 10, lambda r, out: done.append(out), lambda exc: None)
    for r in range(5):  # while the first runs, each new request replaces the waiting one
        runner.request(r)
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert done == [0, 40]
