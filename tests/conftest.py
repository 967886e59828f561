"""Shared fixtures: small real datasets, the CLI as a user calls it, and the local Slurm cluster."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

# pytest-xdist's workers export COLUMNS=80, which the tables honour: the tests read them as a pipe gives
# them, with COLUMNS unset (a shell does not export it), tests/unit/test_command_line.py the widths.
os.environ.pop("COLUMNS", None)

from harness.cli import main  # noqa: E402
from harness.cluster.slurm.backend import slurm_answers

REPO = Path(__file__).resolve().parent.parent


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys):
    """Run `python -m harness ARGS...` in this process; returns exit code, stdout and stderr."""
    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)
    return run


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """A demo dataset small enough to train all eight architectures on two CPU cores in minutes."""
    from harness.data.demo import make_demo
    folder = tmp_path_factory.mktemp("tiny-demo")
    make_demo(folder, per_class=30, size=76, seed=0)
    return folder


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The local Slurm cluster (slurm/local-cluster up); skips, saying why, only where it cannot start."""
    if slurm_answers() is None:
        return
    done = subprocess.run([str(REPO / "slurm" / "local-cluster"), "up"], capture_output=True, text=True)
    reason = slurm_answers()
    if reason is not None:
        pytest.skip(f"no local Slurm cluster: {reason}; local-cluster up said: {done.stderr.strip()[-300:]}")


@pytest.fixture
def results(tmp_path) -> Path:
    # Slurm jobs run as root on this host, so any local folder is shared with the 'nodes'.
    return tmp_path / "results"


def require_root_cluster_tools() -> None:
    for tool in ("scontrol", "sacct", "sbatch"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not on PATH")
    if os.geteuid() != 0:
        pytest.skip("the local cluster runs as root")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups from the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the local Slurm cluster share its nodes and its accounting limits: with pytest-xdist
    (`-n 2 --dist loadgroup`) they run one after another on one worker, beside the others."""
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("slurm"))


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless browser (Debian's chromium, installed when missing, as the Slurm packages are)."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
            subprocess.run(command, capture_output=True, env=env)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("no chromium, and it cannot be installed here (apt-get as root)")
    return found
