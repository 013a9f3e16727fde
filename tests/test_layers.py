"""The tree states the layers (iwavb/__init__.py): a module imports only from its own layer and those below.

Every import of every module in iwavb/ is read from its source (function-level ones included), so a
hidden import cannot break the order unseen. The library never imports Streamlit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "iwavb"
LAYERS = [  # lowest first; a module in layer i may import from layers 0..i
    {"settings", "errors", "files", "schema"},
    {"core"},
    {"data"},
    {"training"},
    {"evaluation"},
    {"artefacts"},
    {"sweep"},
    {"app"},
    {"cli", "__main__"},
]
FORBIDDEN = {"streamlit"}  # the library is Streamlit-free: the app's pages are the only Streamlit code


def layer_of(module: str) -> int:
    """The layer of a dotted module inside iwavb ("training.trainer" -> 3); the package itself is the base."""
    top = module.split(".")[0]
    if top == "" or (top.startswith("__") and top != "__main__"):  # the package itself: __init__, __version__
        return 0
    return next(i for i, names in enumerate(LAYERS) if top in names)


def imports(source: str, relative: Path) -> list[tuple[str, int]]:
    """(imported module relative to iwavb, or an outside module's top name prefixed by '!', line) of the source
    of the module at `relative` (a path inside iwavb/)."""
    package = list(relative.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(source, str(relative))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                if not node.module:  # from . import x: each x may be a module
                    found += [(".".join([*base, a.name]), node.lineno) for a in node.names]
                    continue
                found.append((target, node.lineno))
            elif node.module and node.module.split(".")[0] == "iwavb":
                found.append((node.module.removeprefix("iwavb").lstrip("."), node.lineno))
            elif node.module:
                found.append(("!" + node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "iwavb":
                    found.append((alias.name.removeprefix("iwavb").lstrip("."), node.lineno))
                else:
                    found.append(("!" + alias.name.split(".")[0], node.lineno))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    for path in MODULES:
        layer_of(".".join(path.relative_to(PACKAGE).with_suffix("").parts))  # StopIteration names a stray


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path):
    own = layer_of(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    for target, line in imports(path.read_text(), path.relative_to(PACKAGE)):
        if target.startswith("!"):
            assert target[1:] not in FORBIDDEN, f"{path.name}:{line} imports {target[1:]}: the library stays free of it"
            continue
        assert layer_of(target) <= own, (
            f"{path.relative_to(PACKAGE)}:{line} (layer {own}) imports iwavb.{target} "
            f"(layer {layer_of(target)}): a lower layer may not import a higher one"
        )


def test_the_check_sees_a_violation():
    """The walker finds relative, absolute and function-level imports: a planted upward import is caught."""
    source = "from .model import x\n\ndef f():\n    from ..app import views\n    import iwavb.cli\n"
    found = [t for t, _ in imports(source, Path("core/planted.py"))]
    assert found[0] == "core.model" and layer_of(found[0]) == layer_of("core")
    targets = found[1:]
    assert targets == ["app", "cli"]
    assert all(layer_of(t) > layer_of("core") for t in targets)
