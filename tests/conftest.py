"""Shared fixtures: small real datasets, the CLI as a user calls it, and the local Slurm cluster."""
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytest-xdist's workers export COLUMNS=80, which the tables honour: the tests read them as a pipe gives
# them, with COLUMNS unset (a shell does not export it), tests/unit/test_command_line.py the widths.
os.environ.pop("COLUMNS", None)
# One torch thread per test process: pytest-xdist's workers, the local pools and the Slurm jobs the tests
# start share two cores, and a thread per core in each would oversubscribe them (torch's threads spin).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The harness keeps what the checks of a sweep's records found in the user's cache folder (docs/results.md):
# the tests' in a folder of their own, not the home directory's.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="harness-tests-cache-")

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
def small_demo(tmp_path_factory) -> Path:
    """A demo dataset of 100 images a class at 40 px, the demo's own size: a MobileNetV2 run trains an epoch
    of it in a second or two, long enough to be requeued, cancelled or cut in the middle of its epochs."""
    from harness.data.demo import make_demo
    folder = tmp_path_factory.mktemp("small-demo")
    make_demo(folder, per_class=100, size=40, seed=0)
    return folder


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The local Slurm clusters (slurm/local-cluster up: harness, the default, and othersite), brought up
    once (up is idempotent; a lock keeps two workers from starting daemons at once); skips, saying why,
    only where they cannot start."""
    import fcntl

    with open(tempfile.gettempdir() + "/harness-local-cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run([str(REPO / "slurm" / "local-cluster"), "up"], capture_output=True, text=True)
    reason = slurm_answers()
    if reason is not None or done.returncode != 0:
        pytest.skip(f"no local Slurm cluster: {reason or 'up failed'}; local-cluster up said: {done.stderr.strip()[-300:]}")


OTHERSITE = "/etc/slurm-othersite/slurm.conf"


@pytest.fixture
def other_site(slurm_cluster, monkeypatch) -> None:
    """The test talks to the local cluster othersite, a site the harness has never seen: partitions batch
    (CPU only, the default) and a100 (gpu:a100:2 a node), MaxArraySize 5, node names that resolve nowhere
    (Slurm's commands, and the jobs they start, read SLURM_CONF)."""
    monkeypatch.setenv("SLURM_CONF", OTHERSITE)


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


# The tests on the local Slurm clusters, in two xdist groups, one per cluster: each group's tests run one
# after another on one worker (they share their cluster's nodes and accounting), beside the others (a cluster
# test mostly waits for its jobs: _turn sets tests that compute beside each group).
SLURM_GROUPS = {"other_site": "slurm-othersite", "slurm_cluster": "slurm"}  # the first fixture a test takes decides
# Every command through which a test could reach a cluster, its jobs or its accounting.
SLURM_COMMANDS = ("sinfo", "sbatch", "squeue", "sacct", "scontrol", "scancel", "sacctmgr", "srun", "salloc", "sstat")
FIRST = "test_the_first_command_from_a_fresh_clone_on_a_machine_without_slurm"  # the suite's longest test


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist (3.6 and later) hands out the groups with the most tests first (--loadscope-reorder), which
    put both clusters' groups, which mostly wait, side by side, and the longest test last: the order of
    pytest_collection_modifyitems is the one meant."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def _turn(item: pytest.Item) -> int:
    """Where a test's xdist unit comes in the order the workers take them up: one worker starts on the
    cluster harness's group, the other on the longest test, whose CPU work overlaps that group's waits; then
    the other groups, then othersite's (waits again, by then beside tests that compute), then the rest."""
    groups = {mark.args[0] for mark in item.iter_markers("xdist_group")}
    if "slurm" in groups:
        return 0
    if getattr(item, "originalname", item.name) == FIRST:
        return 1
    if "slurm-othersite" in groups:
        return 3
    return 2 if groups else 4


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups from the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test on a local Slurm cluster in its cluster's xdist group; the tests in the order _turn says."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        group = next((group for fixture, group in SLURM_GROUPS.items() if fixture in fixtures), None)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_turn)


@pytest.fixture(autouse=True)
def grouped_as_marked(request) -> None:
    """Under --dist loadgroup, each worker's xdist names a grouped test after its group ('...@slurm'), which is
    how its scheduler keeps a group on one worker; where it could not (pytest 9.2 with pytest-xdist 3.8), every
    group is spread over the workers, the cluster tests side by side: such a test fails, saying so."""
    workers = getattr(request.config, "workerinput", {}).get("workercount", 1)
    if workers > 1 and getattr(request.config.option, "loadgroup", False) and any(request.node.iter_markers("xdist_group")) \
            and "@" not in request.node.nodeid:
        pytest.fail(f"--dist loadgroup did not group this test (pytest {pytest.__version__} with this pytest-xdist): "
                    "install the test extra's versions (pyproject.toml)", pytrace=False)


def on_the_cluster(item: pytest.Item) -> bool:
    return any(set(SLURM_GROUPS.values()) & set(mark.args) for mark in item.iter_markers("xdist_group"))


@pytest.fixture(scope="session")
def slurm_fence(tmp_path_factory) -> Path:
    """Stand-ins for Slurm's commands that refuse, and write down, every call ($SLURM_FENCE_LOG)."""
    folder = tmp_path_factory.mktemp("slurm-fence")
    for name in SLURM_COMMANDS:
        (folder / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "$SLURM_FENCE_LOG"\n'
                                   f'echo "{name}: refused: the test is in no cluster\'s xdist group" >&2\nexit 1\n')
        (folder / name).chmod(0o755)
    return folder


@pytest.fixture(autouse=True)
def fenced_from_the_cluster(request, monkeypatch, tmp_path_factory) -> Iterator[None]:
    """A test outside the Slurm group that reaches the cluster (a fixture, a module or a subprocess calling
    sinfo, sbatch, ...) fails, naming the calls: it would run beside the group's tests and count their jobs.
    Such a test takes the slurm_cluster fixture, or says --cluster local."""
    if on_the_cluster(request.node):
        yield
        return
    fence = request.getfixturevalue("slurm_fence")
    log = tmp_path_factory.mktemp("fence-log") / "calls"
    monkeypatch.setenv("PATH", f"{fence}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("SLURM_FENCE_LOG", str(log))
    yield
    if log.exists():
        calls = log.read_text().splitlines()
        pytest.fail(f"reached the Slurm cluster outside the cluster tests' xdist groups ({'; '.join(calls[:3])}): "
                    "take the slurm_cluster fixture, or say --cluster local", pytrace=False)


def debian_command(command: str, package: str) -> str:
    """A command from a Debian package, installed when missing (as root, with apt-get, as the Slurm packages
    are); the test is skipped, saying why, where it cannot be."""
    found = shutil.which(command)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]):
            subprocess.run(step, capture_output=True, env=env)
        found = shutil.which(command)
    if found is None:
        pytest.skip(f"no {command}, and it cannot be installed here (apt-get as root)")
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless browser (Debian's chromium)."""
    return debian_command("chromium", "chromium")


@pytest.fixture(scope="session")
def tmux() -> str:
    """A terminal of any size that a test reads back (Debian's tmux)."""
    return debian_command("tmux", "tmux")
