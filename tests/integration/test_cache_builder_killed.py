"""A real fault: the cache builder killed with SIGKILL mid-build, its decoding workers orphaned. The next
build, in a fresh process, must not wait on a lock the dead builder's workers kept, and must clear the
dead builder's temporary folder."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.data.demo import make_demo

REPO = Path(__file__).resolve().parents[2]
RESIZE = "(64, 'bicubic', 0.875)"
BUILD = f"""
import sys, time
from pathlib import Path
from harness.data.cache import build_cache
slow = (lambda done, total, rate: time.sleep(0.5)) if sys.argv[3] == "slow" else None
print(build_cache(Path(sys.argv[1]), {RESIZE}, Path(sys.argv[2]), workers=2, on_progress=slow), flush=True)
"""


def _builder(dataset: Path, cache_root: Path, pace: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's harness, in a fresh interpreter
    return subprocess.Popen([sys.executable, "-c", BUILD, str(dataset), str(cache_root), pace], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for task in tasks.iterdir() for c in (task / "children").read_text().split()]


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def test_a_builder_killed_mid_build_leaves_no_lock_and_no_stale_folder(tmp_path):
    dataset = make_demo(tmp_path / "demo", per_class=200, size=32, seed=0).parent
    cache_root = tmp_path / "cache"
    first = _builder(dataset, cache_root, "slow")
    orphans: list[int] = []
    try:
        # mid-build: the temporary folder is being filled and the decoding workers are alive
        _wait_for(lambda: any(cache_root.glob(".*.tmp-*/train.npy")) and len(_children(first.pid)) >= 2, 120,
                  "the first builder to start writing with its workers")
        orphans = _children(first.pid)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        stale = list(cache_root.glob(".*.tmp-*"))
        assert stale, "the killed builder left no temporary folder: the fault was not injected mid-build"

        second = _builder(dataset, cache_root, "fast")
        try:
            out, err = second.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            second.kill()
            pytest.fail("the second build waited on the lock of a builder killed with SIGKILL")
        assert second.returncode == 0, err
        folder = Path(out.strip())
        assert (folder / "header.json").is_file()
        assert not any(p.exists() for p in stale) and not list(cache_root.glob(".*.tmp-*"))
    finally:
        for pid in [first.pid, *orphans]:  # only the processes this test started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
