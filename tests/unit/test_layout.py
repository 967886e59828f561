"""The house's rules that a reader relies on, checked on the source: no code outside cluster/ names a
backend (each backend answers for itself through base.Backend), and outside cluster/ and the command
line none imports a backend's module."""
import ast
from pathlib import Path

import harness
from harness.cluster import BACKENDS

PACKAGE = Path(harness.__file__).parent
BACKEND_MODULES = {f"harness.cluster.{name}" for name in BACKENDS}


def outside_cluster() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py") if (PACKAGE / "cluster") not in path.parents]


def names_a_backend(node: ast.AST) -> bool:
    """A comparison with a backend's name: `executor == "local"`, `name in ("slurm", ...)`."""
    if not isinstance(node, ast.Compare):
        return False
    constants = [n for n in ast.walk(node) if isinstance(n, ast.Constant)]
    return any(c.value in BACKENDS for c in constants)


def test_no_code_outside_cluster_checks_a_backends_name():
    found = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}" for path in outside_cluster()
             for node in ast.walk(ast.parse(path.read_text())) if names_a_backend(node)]
    assert found == [], "ask the backend (cluster.base.Backend) instead of checking its name"


def test_only_the_command_line_imports_a_backends_module():
    found = []
    for path in outside_cluster():
        if (PACKAGE / "cli") in path.parents:
            continue  # `harness cluster` describes the Slurm site; `sweep --help` states the local pool's size
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in BACKEND_MODULES:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {node.module}")
    assert found == []


def test_the_rule_sees_a_name_check():
    assert names_a_backend(ast.parse('executor == "local"').body[0].value)
    assert not names_a_backend(ast.parse('state == "RUNNING"').body[0].value)
