"""The direction of imports (DESIGN.md): portal → catalogue → orchestrator → crane; monitoring reads
orchestrator and crane. A module never imports a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each app, and the apps it must never import.
FORBIDDEN = {
    "crane": {"orchestrator", "monitoring", "catalogue", "portal"},
    "orchestrator": {"monitoring", "catalogue", "portal"},
    "monitoring": {"catalogue", "portal"},
    "catalogue": {"portal"},
}


def _imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_no_app_imports_a_layer_above_it(app: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imported_apps(path) & FORBIDDEN[app])
        for path in (ROOT / app).rglob("*.py")
        if _imported_apps(path) & FORBIDDEN[app]
    }
    assert wrong == {}
