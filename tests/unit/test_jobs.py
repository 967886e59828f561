"""What a sweep's jobs do (harness.jobs): where they write, and what they leave when a write fails."""
import json

import pytest

from harness import sweeps
from harness.cluster.slurm.environment import job_port
from harness.data.demo import make_demo
from harness.jobs import Preprocess, Train
from harness.store.records import read_spec, write_spec
from harness.training.config import train_options


def test_a_moved_results_folder_builds_its_caches_inside_itself(tmp_path):
    """sweep.json keeps the cache_root of the folder the sweep started in; after the results folder is
    moved, a resumed job builds its caches in the folder that now holds it, never at the old path."""
    make_demo(tmp_path / "data", per_class=21, size=16)
    request = sweeps.SweepRequest(dataset=str(tmp_path / "data"), models=["MobileNetV2"], seeds=1,
                                  train=train_options(image_size=32), results=tmp_path / "before", name="moved")
    sweep, spec = sweeps.plan(request, {"executor": "local"})
    sweep.folder.mkdir(parents=True)
    write_spec(sweep, spec)
    (tmp_path / "before").rename(tmp_path / "after")

    caches = Preprocess(tmp_path / "after" / "moved")()
    assert read_spec(sweeps.SweepPaths(tmp_path / "after" / "moved")).cache_root == str(tmp_path / "before" / "cache")
    assert not (tmp_path / "before").exists()
    assert len(caches) == 1 and list((tmp_path / "after" / "cache").iterdir())


def test_a_run_whose_weights_cannot_be_written_leaves_a_failed_record(tmp_path):
    """best.pt cannot be written (here a folder stands in its place, as a full or broken disk would refuse
    it): the run still ends with a FAILED record that says why, so status and the leaderboard show it."""
    make_demo(tmp_path / "data", per_class=21, size=16)
    request = sweeps.SweepRequest(dataset=str(tmp_path / "data"), models=["MobileNetV2"], seeds=1,
                                  train=train_options(image_size=32, epochs=1, batch_size=16), results=tmp_path / "results",
                                  name="no-room")
    sweep, spec = sweeps.plan(request, {"executor": "local"})
    sweep.folder.mkdir(parents=True)
    write_spec(sweep, spec)
    Preprocess(sweep.folder)()
    sweep.run("MobileNetV2-s0").best.mkdir(parents=True)
    with pytest.raises(OSError):
        Train(sweep.folder)("MobileNetV2-s0")
    record = json.loads(sweep.run("MobileNetV2-s0").result.read_text())
    assert record["status"] == "FAILED" and "best.pt" in record["error"]


def test_runs_sharing_a_node_meet_on_ports_of_their_own():
    """Jobs running at once have ids closer than the port span: each job's ranks meet on a port of its own."""
    ports = [job_port(job) for job in range(123_456, 123_456 + 5_000)]
    assert len(set(ports)) == len(ports) and all(20_000 <= port < 60_000 for port in ports)
