"""The processes that decode images for a job end with it: a job killed alone (the OOM killer's SIGKILL)
while its pool decodes leaves none of them waiting for work for ever, holding their memory."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from patience import HUNG_S

STARTED = "from harness.data.pool import decoding_pool; pool = decoding_pool(2); list(pool.map(abs, range(8))); print(flush=True)"


def _group(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            state, _, group = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state != "Z":
            found.append(int(entry))
    return found


def test_a_pools_processes_end_with_the_process_that_started_them():
    job = subprocess.Popen([sys.executable, "-c", f"{STARTED}; import time; time.sleep({HUNG_S})"], stdout=subprocess.PIPE,
                           start_new_session=True)
    try:
        job.stdout.readline()
        assert len(_group(job.pid)) > 1  # the job and its pool's processes
        job.kill()
        job.wait()
        deadline = time.monotonic() + 30
        while _group(job.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _group(job.pid) == [], "the pool's processes outlived the job"
    finally:
        for pid in _group(job.pid):
            os.kill(pid, signal.SIGKILL)
        job.stdout.close()
