"""Folders built in a temporary sibling (the demo, the uint8 cache): a build removes the temporaries that
killed builders left, whatever process their pid names now, and never a live builder's."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.data.cache import build_cache, cache_key
from harness.data.demo import make_demo
from harness.data.manifest import manifest_digest
from harness.store.staging import remove_dead_temporaries

REPO = Path(__file__).resolve().parents[2]
DEAD_PID = 2**22 + 1  # above Linux's largest pid: no process has it
LIVE_BUILDER = ("import sys; from pathlib import Path; from harness.store.staging import staging_folder\n"
                "with staging_folder(Path(sys.argv[1])) as tmp:\n"
                "    (tmp / 'half.png').write_bytes(b'half'); print(tmp, flush=True); sys.stdin.read()")
RESIZE = (32, "bilinear", 1.0)


def plant_dead(target: Path, pid: int) -> Path:
    """A temporary as a builder killed mid-way leaves it: a half-written file, no builder holding its lock."""
    temporary = target.with_name(f".{target.name}.tmp-{pid}")
    temporary.mkdir(parents=True)
    (temporary / "half.png").write_bytes(b"half")
    return temporary


def start_live_builder(target: Path) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    builder = subprocess.Popen([sys.executable, "-c", LIVE_BUILDER, str(target)], env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert builder.stdout is not None
    return builder, Path(builder.stdout.readline().strip())


def build_demo(target: Path) -> None:
    make_demo(target, per_class=22, size=16, seed=0)


def build_a_cache(target: Path) -> None:
    build_cache(target.parent.parent / "dataset", RESIZE, target.parent, workers=1)


@pytest.fixture
def builds(tmp_path, request):
    """(the folder a build makes, the build) for the demo and for a cache."""
    if request.param == "demo":
        return tmp_path / "datasets" / "demo", build_demo
    dataset = make_demo(tmp_path / "dataset", per_class=22, size=16, seed=0).parent
    return tmp_path / "cache" / cache_key(manifest_digest(dataset), RESIZE), build_a_cache


@pytest.mark.parametrize("builds", ["demo", "cache"], indirect=True)
def test_a_build_removes_what_killed_builders_left_and_keeps_a_live_builders(builds):
    target, build = builds
    dead = [plant_dead(target, DEAD_PID), plant_dead(target, 1)]  # pid 1 is alive but is no builder of ours
    builder, live = start_live_builder(target.with_name(target.name + "-other"))
    concurrent, concurrent_temporary = start_live_builder(target)
    try:
        build(target)
        assert all(not path.exists() for path in dead)
        assert (concurrent_temporary / "half.png").read_bytes() == b"half"  # a live build of the same folder
        assert (live / "half.png").is_file()
    finally:
        for process in (builder, concurrent):
            process.send_signal(signal.SIGKILL)
            process.wait()
    # once killed, the concurrent builder's temporary is the next build's to remove
    assert remove_dead_temporaries(target) == [concurrent_temporary]
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.tmp-")] == []
