"""sweep --synthetic on this machine: no dataset and no preprocessing step, each run times its training step
and inference on random inputs; speed figures only, kept apart from runs on data in the perflog, history and
check."""
import json

import pytest

from harness.store.paths import perflog
from harness.store.perflog_index import read_perflog

from slurm_helpers import sacct_rows

LOCAL = ["--cluster", "local", "--results"]


def test_a_synthetic_sweep_times_the_steps_and_keeps_its_lines_apart(cli, results, tiny_demo, tmp_path):
    synthetic = cli("sweep", "--synthetic", "--models", "MobileNetV2", "--image-size", "32", "--batch-size", "4",
                    "--epochs", "1", "--name", "synthetic", "--wait", *LOCAL, results)
    assert synthetic.code == 0, synthetic.err
    real = cli("sweep", "--dataset", tiny_demo, "--models", "MobileNetV2", "--image-size", "32", "--batch-size", "4",
               "--epochs", "1", "--name", "real", "--wait", *LOCAL, results)
    assert real.code == 0, real.err

    status = cli("status", "synthetic", "--format", "json", "--meta", "--results", results).json()
    assert status["preprocess"]["state"] == "NONE" and [r["state"] for r in status["rows"]] == ["COMPLETED"]
    (row,) = cli("leaderboard", "synthetic", "--format", "json", "--results", results).json()
    assert row["model"] == "MobileNetV2 [synthetic]" and row["accuracy"] is None and row["auc"] is None
    assert row["train_images_per_s"] > 0 and row["infer_images_per_s"] > 0
    assert row["train_images_per_s_q1"] <= row["train_images_per_s"] <= row["train_images_per_s_q3"]
    refused = cli("leaderboard", "synthetic", "--compare", "paper", "--results", results)
    assert refused.code == 2 and "synthetic inputs" in refused.err

    entries, problems = read_perflog(perflog(results))
    assert problems == [] and sorted((e.sweep, e.settings.get("synthetic")) for e in entries) == [("real", False), ("synthetic", True)]
    series = cli("history", "--model", "MobileNetV2", "--format", "json", "--results", results).json()
    settings = sorted({r["settings"] for r in series}, key=len)  # two series, apart by settings.synthetic alone
    assert len(settings) == 2 and settings[1] == settings[0] + " synthetic" and {r["seeds"] for r in series} == {1}

    # references written from the real sweep are no references for the synthetic one's rows, named apart
    references = tmp_path / "local.toml"
    assert cli("check", "real", "--references", references, "--update-references", "--results", results).code == 0
    checked = cli("check", "synthetic", "--references", references, "--results", results)
    assert checked.code == 2 and "rows are MobileNetV2 [synthetic]: nothing to check" in checked.err


@pytest.mark.usefixtures("slurm_cluster")
def test_a_synthetic_sweep_on_the_gpu_partition_is_one_job_a_run_and_no_preprocessing(cli, results):
    """On the local Slurm cluster: no preprocessing job is queued, each run is one task of the gpu partition,
    and its perflog line names the partition and the node it timed, marked synthetic."""
    sweep = cli("sweep", "--synthetic", "--partition", "gpu", "--models", "MobileNetV2", "--image-size", "32", "--batch-size", "4",
                "--name", "synthetic-slurm", "--wait", "--results", results)
    assert sweep.code == 0, sweep.err
    (submission,) = json.loads((results / "synthetic-slurm" / "jobs.json").read_text())["submissions"]
    assert submission["executor"] == "slurm" and submission["preprocess_job"] is None
    (task,) = sacct_rows(submission["tasks"]["MobileNetV2-synthetic-s0"])
    assert task["Partition"] == "gpu" and task["NodeList"].startswith("gpu")
    (entry,), problems = read_perflog(perflog(results))
    assert problems == [] and entry.settings["synthetic"] is True
    assert entry.system["partition"] == "gpu" and entry.system["node"] == task["NodeList"]
    assert entry.figures["train_images_per_s"]["value"] > 0
