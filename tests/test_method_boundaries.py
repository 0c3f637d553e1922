"""Shared code names no method: outside ``methods/<name>/`` no comparison with a method's name, no
``load_method("<name>")`` and no import of a method's private modules; and no class grows past 300 lines."""

import ast
from importlib import import_module
from pathlib import Path
from types import ModuleType

from latent_focus.methods import list_methods

SRC = Path(__file__).resolve().parents[1] / "src" / "latent_focus"
METHODS = SRC / "methods"
PACKAGES = {p.name for p in METHODS.iterdir() if (p / "__init__.py").exists()}
NAMES = {cls.name for cls in list_methods()}
MAX_CLASS_LINES = 300


def _shared_files() -> list[Path]:
    return [f for f in sorted(SRC.rglob("*.py"))
            if not (f.parent != METHODS and METHODS in f.parents and f.relative_to(METHODS).parts[0] in PACKAGES)]


def _module(path: Path) -> list[str]:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported(node: ast.AST, path: Path) -> list[str]:
    """The dotted module names an import statement reaches (``from a import b``: ``a``, and ``a.b`` when it is a
    module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    package = _module(path) if path.name == "__init__.py" else _module(path)[:-1]
    base = package[:len(package) - node.level + 1] if node.level else []
    base = ".".join(base + ([node.module] if node.module else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}")]


def _is_module(dotted: str) -> bool:
    """Whether ``from a import b`` takes module ``a.b`` (not a name that package ``a`` exports)."""
    base, name = dotted.rsplit(".", 1)
    if base.startswith("latent_focus.methods") and _is_package(base):
        return isinstance(getattr(import_module(base), name, None), ModuleType)
    path = SRC.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _is_package(dotted: str) -> bool:
    return (SRC.parent.joinpath(*dotted.split(".")) / "__init__.py").exists()


def _literals(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def violations(path: Path, text: str | None = None) -> list[str]:
    """Each place in module ``path`` (its source ``text``, default: the file's) where it names a method or
    reaches into one."""
    found = []
    where = f"{path.relative_to(SRC)}"
    for node in ast.walk(ast.parse(path.read_text() if text is None else text, str(path))):
        if isinstance(node, ast.Compare):
            for op, left, right in zip(node.ops, [node.left, *node.comparators], node.comparators):
                named = (_literals(left) | _literals(right)) & NAMES
                if isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) and named:
                    found.append(f"{where}:{node.lineno} compares with a method name")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in (
                "load_method", "get_method") and node.args and _literals(node.args[0]) & NAMES:
            found.append(f"{where}:{node.lineno} loads a method by its name")
        for name in _imported(node, path):
            parts = name.split(".")
            if parts[:2] == ["latent_focus", "methods"] and len(parts) > 3 and parts[2] in PACKAGES:
                found.append(f"{where}:{node.lineno} imports {name}, private to the method")
    return found


def test_shared_code_names_no_method():
    assert len(NAMES) == len(PACKAGES) >= 5
    found = [v for f in _shared_files() for v in violations(f)]
    assert not found, "\n".join(found)


def test_the_check_sees_what_it_forbids():
    """Each kind of reach into a method is caught, and help texts and a method's public package are not."""
    text = ('from ..methods.latent.training import train\nimport latent_focus.methods.psf_rl.plan\n'
            'if method == "latent" or name not in ("psf-rl", "x"):\n    load_method("blur-code")\n'
            'from ..methods.latent import LatentParams\nfrom ..methods import base\nhelp = "latent or psf-rl"\n')
    found = violations(SRC / "napari" / "probe.py", text)
    assert [v.split(" ", 1)[1] for v in found] == [
        "imports latent_focus.methods.latent.training, private to the method",
        "imports latent_focus.methods.psf_rl.plan, private to the method",
        "compares with a method name", "compares with a method name", "loads a method by its name"], found


def test_no_class_is_over_300_lines():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})")
    assert not long, long
