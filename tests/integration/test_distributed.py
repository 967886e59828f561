"""Data-parallel training on this machine's CPUs (gloo): a run on two ranks is the run of one process on
their combined batch, step for step, and says so in its record."""
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pandas as pd
import pytest

from harness.jobs import free_port

from slurm_helpers import latest_sweep

# float32 sums in another order (two halves, then their mean, against one batch): the trajectories agree
# to about 1e-6 over three epochs; not normalising over the global batch moves them by 0.01 to 0.1.
TOLERANCE = 1e-4
# One pytest-xdist worker runs the module: the sweeps its tests share are made once, not once per worker.
pytestmark = pytest.mark.xdist_group("distributed")
BOTH = "convnext_atto,resnet10t"  # without batch norm, and with
ONE_PROCESS = ("--batch-size", "8")
TWO_RANKS = ("--gpus-per-run", "2", "--batch-size", "4")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_demo) -> Callable[..., dict[str, tuple[pd.DataFrame, dict]]]:
    """trained(models, *options)[model]: the history and record of each run of a sweep of three epochs on the
    tiny demo, made once for the module and by one worker (a worker's start, torch's import, costs more CPU
    than a run here). At 64 px: at 32 px resnet10t's last maps are 1x1, and its two ranks drift 5e-4 from
    one process, past TOLERANCE."""
    from harness.cli import main

    done: dict[tuple[str, ...], dict[str, tuple[pd.DataFrame, dict]]] = {}

    def train(models: str, *options: str) -> dict[str, tuple[pd.DataFrame, dict]]:
        if (models, *options) not in done:
            results = tmp_path_factory.mktemp("distributed")
            code = main(["sweep", "--cluster", "local", "--max-parallel", "1", "--dataset", str(tiny_demo), "--models", models,
                         "--epochs", "3", "--image-size", "64", *options, "--results", str(results), "--wait"])
            assert code == 0
            records = [json.loads(path.read_text()) for path in latest_sweep(results).glob("runs/*/result.json")]
            done[(models, *options)] = {record["model"]: (pd.read_csv(results / record["sweep_id"] / "runs" / record["run_id"] /
                                                                     "history.csv"), record) for record in records}
        return done[(models, *options)]
    return train


@pytest.mark.parametrize("model, two_ranks", [("convnext_atto", (BOTH, *TWO_RANKS)), ("resnet10t", ("resnet10t", *TWO_RANKS, "--sync-bn"))],
                         ids=["no batch norm", "batch norm over the global batch"])
def test_two_ranks_train_as_one_process_on_their_combined_batch(trained, model, two_ranks):
    two, record = trained(*two_ranks)[model]
    one, _ = trained(BOTH, *ONE_PROCESS)[model]
    pd.testing.assert_frame_equal(two, one, check_exact=False, atol=TOLERANCE, rtol=0)
    assert record["status"] == "COMPLETED", record.get("error")
    assert record["config"]["world_size"] == 2 and record["config"]["sync_bn"] == ("--sync-bn" in two_ranks)
    ranks = record["distributed"]
    assert (ranks["world_size"], ranks["nodes"], ranks["ranks_per_node"], ranks["backend"]) == (2, 1, 2, "gloo")
    assert [r["rank"] for r in ranks["per_rank"]] == [0, 1]
    # the run's images/s: both ranks' images over one span, so about the sum of the two ranks' own rates
    each = [r["train_images_per_s"] for r in ranks["per_rank"]]
    assert record["throughput"]["train_images_per_s"] == pytest.approx(sum(each), rel=0.05)
    assert record["throughput"]["data_wait_fraction"] == max(r["data_wait_fraction"] for r in ranks["per_rank"])


def test_without_global_batch_norm_each_rank_normalises_its_own_share(trained):
    """The control that shows the tolerance above means something: batch norm over each rank's 4 images
    is not batch norm over the 8."""
    two, _ = trained(BOTH, *TWO_RANKS)["resnet10t"]
    one, _ = trained(BOTH, *ONE_PROCESS)["resnet10t"]
    assert (two["train_loss"] - one["train_loss"]).abs().max() > 100 * TOLERANCE


RANK = textwrap.dedent("""
    import os, sys, timm, torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from harness.training.distributed import global_batch_norm
    rank = int(os.environ["RANK"])
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32, dtype=torch.float64)
    reference = timm.create_model("mobilenetv2_100", num_classes=0).double()  # timm's BatchNormAct2d layers
    model = timm.create_model("mobilenetv2_100", num_classes=0).double()
    model.load_state_dict(reference.state_dict())
    expected = reference(x)
    expected.pow(2).mean().backward()
    dist.init_process_group("gloo")
    net = DistributedDataParallel(global_batch_norm(model))
    out = net(x[rank * 4:rank * 4 + 4])
    out.pow(2).mean().backward()
    grads = {n: p.grad for n, p in reference.named_parameters()}
    print(max([(out - expected[rank * 4:rank * 4 + 4]).abs().max().item()]
              + [(p.grad - grads[n]).abs().max().item() for n, p in model.named_parameters()]
              + [(b.double() - r.double()).abs().max().item() for b, r in zip(model.buffers(), reference.buffers())]))
""")


def test_global_batch_norm_is_batch_norm_over_the_whole_batch(tmp_path):
    """timm's fused batch norm and activation layers too: outputs, gradients and running statistics of two
    ranks of 4 images equal those of one batch of 8 (in float64, to rounding)."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    ranks = [subprocess.Popen([sys.executable, "-c", RANK], env={**env, "RANK": str(r)}, stdout=subprocess.PIPE, text=True)
             for r in range(2)]
    gaps = [float(p.communicate(timeout=300)[0].split()[-1]) for p in ranks]
    assert all(p.returncode == 0 for p in ranks)
    assert max(gaps) < 1e-9


def test_a_scaling_sweep_reports_speedup_and_efficiency_against_one_rank(cli, tmp_path, tiny_demo):
    done = cli("sweep", "--cluster", "local", "--max-parallel", "1", "--dataset", tiny_demo, "--models", "resnet10t",
               "--scaling", "1,2", "--seeds", "2", "--epochs", "2", "--batch-size", "4", "--image-size", "32",
               "--results", tmp_path, "--wait")
    assert done.code == 0, done.err
    rows = {row["model"]: row for row in cli("leaderboard", "--format", "json", "--results", tmp_path).json()}
    assert set(rows) == {"resnet10t [x1]", "resnet10t [x2]"}
    one, two = rows["resnet10t [x1]"], rows["resnet10t [x2]"]
    assert (one["ranks"], two["ranks"], one["speedup"]) == (1, 2, 1.0)
    # recomputed from the records: seed by seed, images/s on two ranks over the same seed's on one
    folder = latest_sweep(tmp_path)
    rate = {(ranks, seed): json.loads((folder / "runs" / f"resnet10t-x{ranks}-s{seed}" / "result.json").read_text())
            ["throughput"]["train_images_per_s"] for ranks in (1, 2) for seed in (0, 1)}
    ratios = [rate[(2, seed)] / rate[(1, seed)] for seed in (0, 1)]
    assert two["speedup"] == pytest.approx(sum(ratios) / 2) and two["efficiency"] == pytest.approx(two["speedup"] / 2)
    assert two["speedup_lo"] <= two["speedup"] <= two["speedup_hi"]
    beside = cli("leaderboard", "--compare", "dle", "--format", "json", "--results", tmp_path).json()
    assert all(row["dle_speedup"] is None and row["dle_reason"] == "no GPU in use" for row in beside)
    report = cli("report", "--results", tmp_path)
    assert report.code == 0, report.err
    assert (folder / "figures" / "scaling.png").stat().st_size > 10_000  # speedup against ranks, beside the ideal
    assert "Scaling: speedup and efficiency against one rank" in (folder / "report.html").read_text()


@pytest.mark.parametrize("rank, address", [(1, "gpu-n1"), (0, "127.0.0.1")], ids=["a first node's name that resolves nowhere",
                                                                              "a rank that never comes"])
def test_ranks_that_cannot_meet_fail_in_one_line_within_the_rendezvous_timeout(monkeypatch, rank, address):
    from datetime import timedelta

    from harness.training import distributed

    monkeypatch.setattr(distributed, "RENDEZVOUS_TIMEOUT", timedelta(seconds=2))  # a minute in a job
    for name, value in {"MASTER_ADDR": address, "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2", "RANK": str(rank)}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError) as failed:
        distributed.start("cpu")
    said = str(failed.value)
    assert "\n" not in said and f"rank {rank} of 2 could not meet the others at {address}:" in said and "within 2 s" in said
