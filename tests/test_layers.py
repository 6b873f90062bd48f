"""The module floors of DESIGN.md: imports only go down, pure modules stay pure, and the product never
loads the emulator (worker/local/) unless the `demo` command asks for it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "worker"
FLOORS = {
    "cli": 5,
    "daemon": 4, "dryrun": 4,  # dryrun: a package (command, inputs, report, execute)
    "handler": 3, "prepare": 3,
    # plan would sit on floor 3 beside prepare, but commands (its Plan, full_output_hint) and checkpoint
    # (check_document, job_comment: a token is honoured by the same rules) on floor 2 import it.
    "jobs": 2, "artifacts": 2, "spec": 2, "ssmdoc": 2, "commands": 2, "plan": 2, "checkpoint": 2,
    "health": 2,
    "errors": 1, "config": 1, "journal": 1, "state": 1, "log": 1, "redact": 1, "signals": 1, "systemd": 1,
    "clock": 1,
}
LOCAL = "local"  # the emulator and the demo: beside the floors, reached only via AWS_ENDPOINT_URL
SHARED_WITH_LOCAL = {"errors", "spec", "ssmdoc"}  # the pure modules the emulator may reuse (not to validate)
PURE = ("spec", "ssmdoc", "plan", "checkpoint")  # no AWS SDK, no I/O: the daemon, dry-run and the emulator share them
IMPURE = {"boto3", "botocore", "socket", "subprocess", "urllib", "http"}


def _imported_names(node: ast.AST) -> list[str]:
    """Full module names an import statement loads (``from worker import x`` loads worker.x)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.module == "worker" or (node.module or "").startswith("worker."):
            return [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        return [node.module or ""]
    return []


def _statements(tree: ast.AST, *, module_level: bool) -> list[ast.AST]:
    """Every node, or only those not inside a function body (what runs when the module is imported)."""
    if not module_level:
        return list(ast.walk(tree))
    found: list[ast.AST] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(path: Path, *, module_level: bool = False) -> set[str]:
    names: set[str] = set()
    for node in _statements(ast.parse(path.read_text()), module_level=module_level):
        names.update(_imported_names(node))
    return names


def worker_imports(path: Path, *, module_level: bool = False) -> set[str]:
    """The first-level worker modules a file imports (worker.ssmdoc.x counts as ssmdoc)."""
    found = {n.split(".")[1] for n in imported_modules(path, module_level=module_level) if n.startswith("worker.")}
    return found - {"__version__"}


def top_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


ALL = sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")
PRODUCT = [p for p in ALL if top_name(p) != LOCAL]
EMULATOR = [p for p in ALL if top_name(p) == LOCAL]
RUNNER = ("runner.py", "process.py")  # ssmdoc's runner and the script process it runs: the I/O of the package
PURE_FILES = [p for p in PRODUCT if top_name(p) in PURE and p.name not in RUNNER]


def _ids(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


@pytest.mark.parametrize("path", PRODUCT, ids=_ids)
def test_imports_only_go_down(path: Path) -> None:
    name = top_name(path)
    floor = FLOORS[name]
    upward = {m: FLOORS[m] for m in worker_imports(path) - {name, LOCAL} if FLOORS[m] > floor}
    assert not upward, f"{name} (floor {floor}) imports from a higher floor: {upward}"


def test_every_module_has_a_floor() -> None:
    names = {top_name(p) for p in ALL}
    assert names - {LOCAL} == set(FLOORS), (names - {LOCAL}) ^ set(FLOORS)
    assert (PACKAGE / LOCAL / "__init__.py").exists()


@pytest.mark.parametrize("path", PURE_FILES, ids=_ids)
def test_pure_modules_do_not_touch_aws(path: Path) -> None:
    imported = imported_modules(path)
    assert not {n.split(".")[0] for n in imported} & IMPURE, imported
    assert not {"worker.ssmdoc.runner", "worker.ssmdoc.process"} & imported, "the runner does I/O; pure code must not load it"


PREPARATION = {"worker.spec.parse_spec", "worker.plan.auto_parameters", "worker.plan.make_plan"}


@pytest.mark.parametrize("path", [p for p in PRODUCT if top_name(p) not in ("prepare", "spec", "plan")], ids=_ids)
def test_only_prepare_builds_a_request(path: Path) -> None:
    """The daemon and dry-run share one preparation path (worker/prepare.py), so they cannot drift."""
    assert not imported_modules(path) & PREPARATION


@pytest.mark.parametrize("path", PRODUCT, ids=_ids)
def test_nothing_outside_local_imports_it_at_module_level(path: Path) -> None:
    assert LOCAL not in worker_imports(path, module_level=True)


@pytest.mark.parametrize("path", [p for p in PRODUCT if top_name(p) != "cli"], ids=_ids)
def test_the_worker_never_imports_the_emulator(path: Path) -> None:
    """Only the CLI's demo command reaches worker/local, from inside the command function."""
    assert LOCAL not in worker_imports(path)


@pytest.mark.parametrize("path", EMULATOR, ids=_ids)
def test_the_emulator_uses_only_the_shared_pure_modules(path: Path) -> None:
    used = worker_imports(path) - {LOCAL}
    assert used <= SHARED_WITH_LOCAL, f"{_ids(path)} imports {used - SHARED_WITH_LOCAL} from the product"


@pytest.mark.parametrize("path", EMULATOR, ids=_ids)
def test_the_emulator_does_not_validate_with_the_workers_code(path: Path) -> None:
    """A shared validator cannot catch its own mistakes: the emulator has its own (local/ssm_parameters.py)."""
    assert not imported_modules(path) & {"worker.ssmdoc.params", "worker.ssmdoc.validate_parameters"}


def test_loading_the_product_loads_neither_the_emulator_nor_moto() -> None:
    code = ("import sys, worker.cli, worker.daemon, worker.dryrun, worker.ssmdoc.runner; "
            "print(sorted(m for m in sys.modules if m.startswith(('worker.local', 'moto'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
