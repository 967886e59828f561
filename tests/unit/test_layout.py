"""The house's rules that a reader relies on, checked on the source: every scheduler lives in cluster/.
Outside harness/cluster/, no code

- imports a backend's module or a scheduler's library (submitit): it imports the registry
  (`harness.cluster`: get_backend, chosen_backend, job_environment, site_backend for `harness cluster`)
  and the interface (`harness.cluster.base`), the command line included;
- names a scheduler (slurm, sbatch, sacct, squeue, scontrol, ..., submitit) in an identifier or a string,
  its variables (SLURM_*) or its strings' formats (gres/gpu=...): it asks the backend instead. Prose may
  name one: docstrings and comments are not code;
- checks a backend's name (`executor == "local"`): each backend answers for itself through base.Backend.
"""
import ast
import re
from pathlib import Path

import harness
from harness.cluster import BACKENDS

PACKAGE = Path(harness.__file__).parent
CLUSTER = PACKAGE / "cluster"
ALLOWED_IMPORTS = {"harness.cluster", "harness.cluster.base"}
SCHEDULER = re.compile(r"slurm|sbatch|sacct|squeue|scontrol|sinfo|srun|salloc|scancel|submitit|gres/", re.IGNORECASE)


def outside_cluster() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py") if CLUSTER not in path.parents]


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string nodes that stand alone as statements: docstrings, prose."""
    return {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def identifiers(node: ast.AST) -> list[str]:
    """The names a node spells: a variable, an attribute, a definition, an argument, a keyword, an import."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword):
        return [node.arg or ""]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()


def imported(node: ast.AST) -> list[str]:
    """The modules an import statement loads (`from harness.cluster import local` loads harness.cluster.local)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module, *(name for alias in node.names if is_module(name := f"{node.module}.{alias.name}"))]
    return []


def names_a_backend(node: ast.AST) -> bool:
    """A comparison with a backend's name: `executor == "local"`, `name in ("slurm", ...)`."""
    if not isinstance(node, ast.Compare):
        return False
    return any(isinstance(n, ast.Constant) and n.value in BACKENDS for n in ast.walk(node))


def breaches(source: str) -> list[str]:
    """Where code names a scheduler, imports a backend, or checks a backend's name: 'LINE: what'."""
    tree = ast.parse(source)
    prose, found = docstrings(tree), []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        for module in imported(node):
            if module.startswith("harness.cluster.") and module not in ALLOWED_IMPORTS or module.split(".")[0] == "submitit":
                found.append(f"{line}: imports {module}")
        found += [f"{line}: names {name}" for name in identifiers(node) if SCHEDULER.search(name)]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose and SCHEDULER.search(node.value):
            found.append(f"{line}: says {node.value!r:.60}")
        if names_a_backend(node):
            found.append(f"{line}: checks a backend's name")
    return found


def test_no_code_outside_cluster_names_a_scheduler_or_imports_a_backend():
    found = [f"{path.relative_to(PACKAGE.parent)}:{breach}" for path in outside_cluster() for breach in breaches(path.read_text())]
    assert found == [], "ask the backend (cluster.base.Backend, cluster.job_environment) instead"


def test_the_rule_sees_each_kind_of_breach():
    assert breaches('import submitit') and breaches('from submitit.helpers import Checkpointable')
    assert breaches('from harness.cluster.slurm.site import read_site') and breaches('import harness.cluster.local')
    assert breaches('from harness.cluster import local') and breaches('from harness.cluster.slurm import backend')
    assert breaches('def export_slurm_ranks(): pass') and breaches('x = backend.sacct_fields')
    assert breaches('f(sbatch=1)') and breaches('def f(squeue): pass')
    assert breaches('x = os.environ.get("SLURM_JOB_ID")') and breaches('run(["scontrol", "show", "node"])')
    assert breaches('gpus = re.compile(r"gres/gpu=([0-9]+)")') and breaches('message = f"no Slurm answers {why}"')
    assert breaches('executor == "local"')
    assert not breaches('"""Knows nothing of Slurm: a docstring is prose."""\nx = 1  # nor is a comment (sacct)')
    assert not breaches('from harness.cluster import get_backend, job_environment\nfrom harness.cluster.base import Work')
    assert not breaches('state == "RUNNING"') and not breaches('partition = system.get("partition")')


def test_the_package_face_is_imported_by_nothing_inside_it():
    """harness/__init__.py hands out harness.load from harness.api, at the top of the house: a module inside the
    package that read `harness.__version__` through it (`import harness`) would import it from below."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert "harness" not in [alias.name for alias in node.names], path.relative_to(PACKAGE)
            if isinstance(node, ast.ImportFrom) and node.module == "harness":
                assert all(is_module(f"harness.{alias.name}") for alias in node.names), path.relative_to(PACKAGE)
