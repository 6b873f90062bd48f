"""The module floors of DESIGN.md: imports only go down, pure modules stay pure, the daemon never sees the emulator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "worker"
FLOORS = {
    "cli": 5,
    "daemon": 4, "dryrun": 4, "demo": 4,
    "handler": 3, "local": 3,
    "jobs": 2, "artifacts": 2, "spec": 2, "documents": 2, "commands": 2, "plan": 2, "checkpoint": 2,
    "health": 2,
    "errors": 1, "config": 1, "journal": 1, "state": 1, "log": 1, "signals": 1, "systemd": 1,
}
PURE = ("spec", "documents", "plan", "checkpoint")  # no AWS SDK, so dry-run and the runner share them


def worker_imports(path: Path) -> set[str]:
    """The first-level worker modules a file imports (worker.local.x counts as local)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.ImportFrom) and node.module == "worker":
            names = [f"worker.{a.name}" for a in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("worker.")}
    return found - {"__version__"}


def floor_of(path: Path) -> tuple[str, int]:
    rel = path.relative_to(PACKAGE)
    name = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    return name, FLOORS[name]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")
                 or p.parent.name == "local")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path: Path) -> None:
    name, floor = floor_of(path)
    upward = {m: FLOORS[m] for m in worker_imports(path) if m != name and FLOORS[m] > floor}
    assert not upward, f"{name} (floor {floor}) imports from a higher floor: {upward}"


def test_every_module_has_a_floor() -> None:
    names = {floor_of(p)[0] for p in MODULES if p.stem in FLOORS or p.parent.name == "local"}
    stems = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"} | {"local"}
    assert stems <= set(FLOORS), stems - set(FLOORS)
    assert names <= set(FLOORS)


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_do_not_touch_aws(name: str) -> None:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"boto3", "botocore", "socket", "subprocess", "urllib"}, imported


@pytest.mark.parametrize("name", ["handler", "daemon", "jobs", "artifacts", "commands"])
def test_the_worker_never_imports_the_emulator(name: str) -> None:
    assert "local" not in worker_imports(PACKAGE / f"{name}.py")
