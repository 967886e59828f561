"""A benchmark across sweeps on this machine: two sweeps into one results folder make one performance
log; history, compare and check read it; any timm model trains; --compile falls back where it fails."""
import json
import re

import jsonschema
import pytest
import torch

import harness
from harness.data.cache import load_split
from harness.store.json_schema import SCHEMA_DIR
from harness.store.paths import RunPaths, list_sweeps, perflog
from harness.store.perflog_index import read_perflog
from harness.training.config import TrainConfig
from harness.training.trainer import DeviceSplit, Trainer

# batch 4: the tiny demo's 24 training images make 6 steps an epoch, 3 of them past the warm-up and timed
TINY = ["--cluster", "local", "--epochs", "1", "--image-size", "32", "--batch-size", "4"]


def test_two_sweeps_one_perflog_history_compare_and_check(cli, results, tiny_demo, tmp_path):
    for name in ("first", "second"):
        sweep = cli("sweep", *TINY, "--dataset", tiny_demo, "--models", "MobileNetV2", "--results", results,
                    "--name", name, "--wait")
        assert sweep.code == 0, sweep.err
    entries, problems = read_perflog(perflog(results))
    assert problems == [] and [(e.sweep, e.run) for e in entries] == [("first", "MobileNetV2-s0"), ("second", "MobileNetV2-s0")]
    assert entries[0].system["cluster"] == "local" and entries[0].system["partition"] == "local"
    assert entries[0].settings["batch_size"] == 4 and entries[0].settings["image_size"] == 32
    assert entries[0].figures["train_images_per_s"]["unit"] == "images/s" and entries[0].value("train_images_per_s") > 0
    assert entries[0].system["git_commit"] == json.loads((results / "first" / "sweep.json").read_text())["code"]["git_commit"]
    for name, data in (("sweep", json.loads((results / "first" / "sweep.json").read_text())),
                       ("jobs", json.loads((results / "first" / "jobs.json").read_text())),
                       ("result", json.loads((results / "first" / "runs" / "MobileNetV2-s0" / "result.json").read_text())),
                       *(("perflog-line", json.loads(line)) for line in perflog(results).read_text().splitlines())):
        schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())  # shipped; checked by another library
        assert not list(jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).iter_errors(data)), name
    loaded = harness.load(results)  # the notebook's view: the latest sweep, and the perflog of every sweep
    assert loaded.sweep_id == "second" and list(loaded.perflog["sweep"]) == ["first", "second"]
    assert loaded.perflog["figures.train_images_per_s.value"].tolist() == [e.value("train_images_per_s") for e in entries]

    # history: one series (same system, same settings), a point per sweep, the second with its change
    rows = cli("history", "--metric", "accuracy", "--format", "json", "--results", results).json()
    assert [r["sweep"] for r in rows] == ["first", "second"] and rows[0]["change"] is None
    assert rows[1]["change"] == pytest.approx(rows[1]["accuracy"] / rows[0]["accuracy"]) if rows[0]["accuracy"] else True
    assert cli("history", "--model", "MobileNetV2", "--partition", "local", "--results", results).code == 0
    png = cli("history", "--format", "png", "--out", tmp_path / "history.png", "--results", results)
    assert png.code == 0 and (tmp_path / "history.png").read_bytes()[:4] == b"\x89PNG"
    assert cli("history", "--model", "VGG16", "--results", results).code == 2

    # compare: one seed a side says nothing of the spread; GPU-hours are null with their reason on a CPU
    compared = cli("compare", "first", "second", "--format", "json", "--results", results).json()
    figures = {r["figure"]: r for r in compared if r["model"] == "MobileNetV2"}
    assert figures["accuracy"]["beyond_spread"] == "unknown" and "one seed" in figures["accuracy"]["test"]
    speed = figures["train_images_per_s"]
    assert speed["ratio"] == pytest.approx(speed["b"] / speed["a"])
    assert figures["gpu_hours"]["a"] is None and "no GPU in use" in figures["gpu_hours"]["note"]
    assert cli("compare", "first", "second", "--results", results).code == 0

    # check: references made from the first sweep hold for it; one figure made impossible fails (accuracy:
    # a speed figure is left out of the references where the run shared this machine with another test's)
    references = tmp_path / "local.toml"
    made = cli("check", "first", "--references", references, "--update-references", "--results", results)
    assert made.code == 0 and references.is_file()
    passed = cli("check", "first", "--references", references, "--format", "json", "--results", results)
    assert passed.code == 0 and {r["verdict"] for r in passed.json()} == {"pass"}
    text = references.read_text()
    impossible = re.sub(r"(?m)^(accuracy = \{ ?value = )[^,]+", r"\g<1>1e-9", text)
    assert impossible != text, text
    broken = tmp_path / "impossible.toml"
    broken.write_text(impossible)
    failed = cli("check", "first", "--references", broken, "--results", results)
    assert failed.code == 1 and "FAIL" in failed.out and "MobileNetV2 accuracy" in failed.err, failed.err
    bad = tmp_path / "bad.toml"
    bad.write_text("[MobileNetV2]\naccuracy = [0.9, -0.05, 0.05]\n")
    refused = cli("check", "first", "--references", bad, "--results", results)
    assert refused.code == 2 and refused.err.count("\n") == 1 and "is not a table" in refused.err


def test_any_timm_model_trains_with_the_papers_head(cli, results, tiny_demo):
    sweep = cli("sweep", *TINY, "--max-parallel", "1", "--dataset", tiny_demo, "--models", "resnet50,efficientnet_b0",
                "--results", results, "--wait")
    assert sweep.code == 0, sweep.err
    board = {row["model"]: row for row in cli("leaderboard", "--format", "json", "--results", results).json()}
    assert set(board) == {"resnet50", "efficientnet_b0"} and {r["status"] for r in board.values()} == {"COMPLETED"}
    folder = list_sweeps(results)[-1].folder
    record = json.loads((folder / "runs" / "efficientnet_b0-s0" / "result.json").read_text())
    assert record["preprocessing"]["interpolation"] == "bicubic" and record["preprocessing"]["image_size"] == 32
    assert record["params"] > 4_000_000 and record["throughput"]["compile_seconds"] is None
    assert {e.architecture for e in read_perflog(perflog(results))[0]} == {"resnet50", "efficientnet_b0"}


def test_timm_names_are_checked_and_listed(cli, results):
    wrong = cli("sweep", "--cluster", "local", "--models", "resnet-50", "--results", results)
    assert wrong.code == 2 and "unknown architecture 'resnet-50'" in wrong.err and "did you mean resnet50" in wrong.err
    assert not results.exists()
    too_small = cli("sweep", "--cluster", "local", "--models", "inception_v4", "--image-size", "64", "--results", results)
    assert too_small.code == 2 and "inception_v4 needs --image-size of at least 75" in too_small.err
    listed = cli("models", "--all", "convnext_t*", "--format", "json").json()
    assert {"model": "convnext_tiny", "pretrained": "yes"}.items() <= next(r for r in listed if r["model"] == "convnext_tiny").items()
    assert cli("models", "--all", "no_such_model*").code == 2


def test_a_vision_transformer_takes_the_sweeps_image_size():
    from harness.zoo.lookup import preprocessing_for, spec_of
    from harness.zoo.models import build_model, keras_param_count

    assert spec_of("vit_small_patch16_224").dynamic_img_size
    model = build_model("vit_small_patch16_224")
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2,) and model(torch.zeros(1, 3, 96, 96)).shape == (1,)
    # timm's ViT-S/16 (21,665,664 without its classifier) and the paper's head: 384*512+512 + 512+1
    assert keras_param_count(model) == 21_665_664 + 384 * 512 + 512 + 512 + 1
    assert preprocessing_for("vit_small_patch16_224", image_size=64).mean == (0.5, 0.5, 0.5)


def test_compile_falls_back_to_the_eager_step_with_its_reason(tiny_demo, tmp_path, monkeypatch, caplog):
    run = Trainer(TrainConfig(model="MobileNetV2", image_size=32, batch_size=8, compile=True), tiny_demo,
              tmp_path / "cache", RunPaths(tmp_path / "run"))
    data = DeviceSplit.load(load_split(run.cache, "train"), run.device)

    def no_compiler(function):
        def fails(*args):
            raise RuntimeError("InductorError: no C++ compiler\nmore detail")
        return fails

    monkeypatch.setattr(torch, "compile", no_compiler)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    outcome = run.compile_step(data)
    assert outcome == {"compile_seconds": None, "compile_fallback_reason": "RuntimeError: InductorError: no C++ compiler"}
    assert "torch.compile failed for MobileNetV2" in caplog.text
    assert all(torch.equal(before[k], v) for k, v in run.model.state_dict().items())  # the warm-up left no trace
    assert run.compiled_forward_loss is None
    assert run.train_step(data.take(slice(0, 8), run.device), data.labels[:8], None).shape == (8,)
