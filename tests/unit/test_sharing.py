"""Whether a run had its node and its GPU to itself: this machine's other busy processes as the local backend
sees them (real processes), and a run's sharing from its looks: the node's other work, the GPU's other
processes (NVML, faked: no GPU here), the host's load against the run's CPUs."""
import os
import subprocess
import sys
import time

import pytest
import torch

from harness.cluster import local
from harness.cluster.base import NodeWatch
from harness.cluster.local import ProcessWatch
from harness.measure import sharing
from harness.measure.meters import GpuSampler
from harness.measure.sharing import LOAD_LIMIT, SharingMeter, over_ranks

from patience import HUNG_S

# A busy process of its own (another sweep's worker): forked off and left, so that it is no child of the test.
# It lets go of the test's pipes once it has said its pid, so that the test's read of them ends.
ELSEWHERE = ("import os, sys\nif os.fork():\n    sys.exit(0)\nos.setsid()\nprint(os.getpid(), flush=True)\n"
             "null = os.open(os.devnull, os.O_WRONLY)\nos.dup2(null, 1)\nos.dup2(null, 2)\nwhile True:\n    pass\n")


def test_the_local_watch_names_the_busy_processes_and_leaves_out_the_idle_and_the_runs_own(monkeypatch):
    # Any CPU counts here: beside a busy suite at nice 19 (CI's oldest environment), a busy loop gets a sliver of one.
    monkeypatch.setattr(local, "MIN_CPU_SHARE", 0.001)
    elsewhere = int(subprocess.run([sys.executable, "-c", ELSEWHERE], capture_output=True, text=True).stdout)
    idle = subprocess.Popen(["sleep", str(HUNG_S)])
    mine = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # started by this process: one of the run's ranks
    try:
        watch = ProcessWatch()
        watch.sample()
        deadline, named = time.monotonic() + HUNG_S, {}
        while elsewhere not in named and time.monotonic() < deadline:
            time.sleep(1.0)
            watch.sample()
            others = watch.others()
            assert others is not None and watch.reason is None
            named = {int(line.split()[1]): line for line in others}
    finally:
        os.kill(elsewhere, 9)
        for process in (idle, mine):
            process.kill()
            process.wait()
    assert elsewhere in named and f"({sys.executable} -c import os" in named[elsewhere]
    assert os.getpid() not in named and idle.pid not in named and mine.pid not in named


def test_one_look_is_no_span_to_tell_by():
    watch = ProcessWatch()
    watch.sample()
    assert watch.others() is None and watch.reason == "this machine's processes were not looked at twice"


class Seen(NodeWatch):
    """A backend's view of the node that saw these other jobs."""

    source = "the test's scheduler"

    def __init__(self, others: list[str] | None, reason: str | None = None) -> None:
        super().__init__(reason)
        self.seen, self.looks = others, 0

    def sample(self) -> None:
        self.looks += 1

    def others(self) -> list[str] | None:
        return self.seen


def meter(node: NodeWatch | None, cpus: int = 4, device: str = "cpu") -> SharingMeter:
    sampler = GpuSampler(torch.device(device))
    sampler._open()
    return SharingMeter(node, "gpu01", sampler, cpus, {os.getpid()})


def test_a_run_alone_on_a_cpu_says_so_its_gpu_part_null_with_its_reason(monkeypatch):
    monkeypatch.setattr(sharing.os, "getloadavg", lambda: (3.9, 3.0, 3.0))
    watch = Seen([])
    looks = meter(watch)
    for last in (False, False, False, True):
        looks.sample(last)
    found = looks.summary()
    assert watch.looks == 2  # the node at the first and the last edge, the load at every one
    assert found["alone"] is True and found["shared_by"] == []
    assert found["gpu"] == {"others": None, "reason": "no NVIDIA GPU in use (device: cpu)"}
    assert found["load"]["mean"] == 3.9 and found["load"]["samples"] == 4 and found["load"]["cpus"] == 4


def test_other_jobs_and_a_loaded_host_are_what_shared_the_run(monkeypatch):
    monkeypatch.setattr(sharing.os, "getloadavg", lambda: (LOAD_LIMIT * 4 + 1, 0.0, 0.0))
    looks = meter(Seen(["job 7 sleep (alice)", "job 8 train (bob)"]))
    looks.sample(True)
    found = looks.summary()
    assert found["alone"] is False
    assert found["shared_by"] == ["node gpu01: job 7 sleep (alice) and 1 more", "host load 7.00 over the run's 4 CPUs"]


def test_a_node_the_backend_cannot_see_leaves_the_run_not_known(monkeypatch):
    monkeypatch.setattr(sharing.os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    looks = meter(Seen(None, "the other backend does not say what else runs on its nodes"))
    looks.sample(True)
    found = looks.summary()
    assert found["alone"] is None and found["node"]["reason"] == "the other backend does not say what else runs on its nodes"


@pytest.mark.parametrize("listed, others", [
    ({os.getpid()}, []),  # this run alone on its GPU
    ({os.getpid(), 4242}, ["process 4242"]),
    ({91, 92}, ["1 other process (NVML's process ids are another pid namespace's)"]),  # in a container
])
def test_the_gpus_other_processes_are_those_nvml_lists_besides_the_runs_own(monkeypatch, listed, others):
    monkeypatch.setattr(sharing.os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    looks = meter(Seen([]), device="cuda")
    looks.sampler.reason = None  # NVML as a GPU answers it, for the one part that cannot exist here
    monkeypatch.setattr(looks.sampler, "compute_pids", lambda: set(listed))
    looks.sample(True)
    found = looks.summary()
    assert found["gpu"] == {"others": others, "reason": None}
    assert found["alone"] is (not others) and (found["shared_by"] == ([f"GPU: {others[0]}"] if others else []))


def test_a_run_of_several_ranks_is_shared_where_any_rank_was():
    alone = {"alone": True, "shared_by": [], "node": None, "gpu": {"others": [], "reason": None}, "load": None}
    shared = {**alone, "alone": False, "shared_by": ["GPU: process 4242"]}
    found = over_ranks([alone, shared])
    assert found["alone"] is False and found["shared_by"] == ["rank 1: GPU: process 4242"] and found["per_rank"] == [alone, shared]
    assert over_ranks([alone, alone])["alone"] is True and over_ranks([alone]) == alone
