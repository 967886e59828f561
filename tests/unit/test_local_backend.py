"""The local backend with what a results folder may say of its processes: a process jobs.json names is
signalled only where it is this sweep's worker, and a log that is no file is never read."""
import os
import signal
import subprocess
import sys

import pytest

from harness.cluster.base import last_line
from harness.cluster.local import LocalBackend, worker_token
from harness.store.paths import SweepPaths

from patience import HUNG_S


@pytest.fixture
def sweep(tmp_path):
    made = SweepPaths.of(tmp_path / "results", "s1")
    made.folder.mkdir(parents=True)
    return made


def _alive(process: subprocess.Popen) -> bool:
    return process.poll() is None


def _process(*words: str) -> subprocess.Popen:
    """A sleeping process with these words on its command line that, as a worker does (end_on_sigterm), ends
    on SIGTERM whatever this one ignores; started, and past that point, when this returns."""
    code = f"from harness.jobs import end_on_sigterm; end_on_sigterm(); print(flush=True); import time; time.sleep({HUNG_S})"
    process = subprocess.Popen([sys.executable, "-c", code, *words], stdout=subprocess.PIPE, start_new_session=True)
    process.stdout.readline()
    return process


def test_cancel_signals_this_sweeps_workers_and_no_other_process(sweep, tmp_path):
    """jobs.json may name any live process (an edit, a reused pid with a forged start time): cancel sends
    SIGTERM only to a worker whose command line runs this sweep's folder, and ends it even where it was stopped."""
    other_sweep = SweepPaths.of(tmp_path / "results", "s2")
    started = {"unrelated": _process(), "other sweep's worker": _process("worker", str(other_sweep.folder)),
               "this sweep's worker": _process("worker", str(sweep.folder), "MobileNetV2-s0")}
    os.kill(started["this sweep's worker"].pid, signal.SIGSTOP)  # stopped (^Z): it acts on SIGTERM once it runs again
    os.waitpid(started["this sweep's worker"].pid, os.WUNTRACED)  # once it has stopped
    try:
        LocalBackend().cancel(sweep, ["+".join(worker_token(p.pid) for p in started.values())])
        assert started["this sweep's worker"].wait(timeout=HUNG_S) == -signal.SIGTERM
        assert _alive(started["unrelated"]) and _alive(started["other sweep's worker"])
    finally:
        for process in started.values():
            process.kill()
            process.wait()
            process.stdout.close()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder"])
def test_a_log_that_is_no_file_has_no_last_line(tmp_path, kind):
    log = tmp_path / "local-MobileNetV2-s0.log"
    if kind == "fifo":
        os.mkfifo(log)
    elif kind == "dev-zero":
        log.symlink_to("/dev/zero")
    else:
        log.mkdir()
    assert last_line(log) == ""


def test_the_last_line_of_a_long_log_is_read_from_its_end(tmp_path):
    log = tmp_path / "local-MobileNetV2-s0.log"
    log.write_text("x" * 100_000 + "\n\nepoch 3 failed: out of memory\n\n")
    assert last_line(log) == "epoch 3 failed: out of memory"
