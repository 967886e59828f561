"""Per-architecture training defaults: an architecture's own lr and warm-up (zoo.registry,
as timm keeps per-model defaults) are used when the user gives no --lr / --warmup-epochs, recorded in
each run's config, and a value the user gives wins for every architecture. On the demo, each takes the
demo's input size or, where it needs more, its own minimum. No training: plans only."""
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from harness import sweeps
from harness.analysis.paper import setting_rows
from harness.cli import build_parser
from harness.errors import UserError
from harness.store.records import SweepSpec
from harness.training.config import TrainConfig, config_for, model_defaults, train_options
from harness.training.trainer import Trainer
from harness.zoo.registry import MODEL_NAMES, MODEL_SPECS

from patience import HUNG_S

DEFAULT = TrainConfig(model="")


def _configs(tmp_path, argv: list[str]) -> dict[str, TrainConfig]:
    """The run configs a `sweep` command line would plan (nothing written, no job started)."""
    spec = _plan(tmp_path, argv)
    return {run.model: config_for(spec, run) for run in spec.runs}


def _plan(tmp_path, argv: list[str]) -> SweepSpec:
    args = build_parser().parse_args(["sweep", "--cluster", "local", "--results", str(tmp_path), *argv])
    train = train_options(lr=args.lr, warmup_epochs=args.warmup_epochs, epochs=args.epochs, image_size=args.image_size,
                          batch_size=args.batch_size)
    request = sweeps.SweepRequest(dataset="demo", models=sweeps.parse_models(args.models), seeds=1, train=train,
                                  results=tmp_path, batch_size_given=args.batch_size is not None)
    return sweeps.plan(request, {"executor": "local"})[1]


def test_on_the_demo_each_architecture_takes_the_demo_size_or_its_own_minimum(tmp_path):
    sizes = {model: config.image_size for model, config in _configs(tmp_path, []).items()}
    assert sizes == {**dict.fromkeys(MODEL_NAMES, sweeps.DEMO_IMAGE_SIZE), "Xception": 71, "InceptionV3": 75}
    rows = {row["item"]: row for row in setting_rows(_plan(tmp_path, []))}
    assert rows["input size"]["this sweep"] == "35 px (Xception 71, InceptionV3 75)"
    # a size the user gives is the size every architecture gets, or a refusal
    assert {c.image_size for c in _configs(tmp_path, ["--image-size", "80"]).values()} == {80}
    with pytest.raises(UserError, match="(Xception|InceptionV3) needs --image-size of at least 7"):
        _configs(tmp_path, ["--image-size", "35"])


def test_on_the_demo_inceptionv3_takes_its_own_batch_unless_one_is_given(tmp_path):
    batches = {model: config.batch_size for model, config in _configs(tmp_path, []).items()}
    assert batches == {**dict.fromkeys(MODEL_NAMES, DEFAULT.batch_size), "InceptionV3": 16}
    for given in ("32", "64"):  # the default typed out is a batch given too
        assert {c.batch_size for c in _configs(tmp_path, ["--batch-size", given]).values()} == {int(given)}


def test_the_vggs_have_their_own_lr_and_warm_up():
    # BatchNorm-free: at the shared 1e-3 they collapse to a constant output in the first epoch
    for name in ("VGG16", "VGG19"):
        assert MODEL_SPECS[name].lr < DEFAULT.lr and MODEL_SPECS[name].warmup_epochs >= 1


def test_without_lr_each_architecture_trains_with_its_own(tmp_path):
    configs = _configs(tmp_path, [])
    assert set(configs) == set(MODEL_NAMES)
    for name, config in configs.items():
        spec = MODEL_SPECS[name]
        assert config.lr == (spec.lr if spec.lr is not None else DEFAULT.lr)
        assert config.warmup_epochs == (spec.warmup_epochs if spec.warmup_epochs is not None else DEFAULT.warmup_epochs)
        assert config.lr == model_defaults(name)["lr"]
    assert configs["VGG16"].lr != configs["ResNet50"].lr  # the defaults do differ


def test_a_given_lr_and_warm_up_win_for_every_architecture(tmp_path):
    configs = _configs(tmp_path, ["--lr", "0.02", "--warmup-epochs", "0"])
    assert {(c.lr, c.warmup_epochs) for c in configs.values()} == {(0.02, 0)}


def test_the_sweep_records_none_and_each_run_the_value_it_used(tmp_path):
    args = build_parser().parse_args(["sweep"])
    assert args.lr is None and args.warmup_epochs is None  # not 1e-3: that would override every architecture's own
    assert train_options()["lr"] is None and train_options(lr=0.5)["lr"] == 0.5
    config = _configs(tmp_path, ["--models", "VGG19"])["VGG19"]
    assert isinstance(config.lr, float) and config.lr == MODEL_SPECS["VGG19"].lr  # what the run's record holds


def test_any_other_timm_model_takes_the_shared_defaults():
    assert model_defaults("resnet18") == {"lr": DEFAULT.lr, "warmup_epochs": DEFAULT.warmup_epochs}
    # one of the eight by its timm name is still that architecture
    assert model_defaults("vgg16.tv_in1k") == model_defaults("VGG16") != model_defaults("resnet18")


@pytest.mark.parametrize("warmup_epochs, expected", [(0, [1.0] * 6), (1, [1 / 3, 2 / 3, 1.0, 1.0, 1.0, 1.0]),
                                                     (2, [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])])
def test_the_warm_up_raises_the_lr_linearly_over_its_epochs(warmup_epochs, expected):
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    run = SimpleNamespace(config=TrainConfig(model="VGG16", lr=1.0, warmup_epochs=warmup_epochs), optimizer=optimizer)
    seen = []
    for step in range(6):  # two epochs of three steps
        Trainer.set_lr(run, step, steps_per_epoch=3)
        seen.append(optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx(expected)


def test_the_registrys_input_of_each_architecture_is_the_installed_timms():
    """The copy a cache-building job reads without timm is what timm says of its default weights."""
    from harness.zoo.lookup import _timm

    timm = _timm()
    for spec in MODEL_SPECS.values():
        expected = spec.timm_input.as_cfg()
        found = timm.get_pretrained_cfg(spec.timm_name).to_dict()
        assert {key: found[key] for key in expected} == expected, spec.name


def test_the_preprocessing_job_plans_its_caches_without_importing_timm():
    """A Slurm preprocessing job resolves each run's resize (timm's import alone is seconds of CPU a job)."""
    code = ("import sys; from harness.zoo.lookup import preprocessing_for; from harness.zoo.registry import MODEL_NAMES; "
            "[preprocessing_for(name, mode, 96).resize_key for name in MODEL_NAMES for mode in ('timm', 'paper')]; "
            "print('timm' in sys.modules, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=HUNG_S)
    assert done.stdout.split() == ["False", "False"]


def test_imagenet_weights_whose_input_is_not_the_registrys_are_refused(monkeypatch):
    import dataclasses

    from harness.zoo.models import check_imagenet_weights, imagenet_cfg

    spec = MODEL_SPECS["ResNet50"]
    monkeypatch.setitem(MODEL_SPECS, "ResNet50", dataclasses.replace(spec, timm_input=dataclasses.replace(spec.timm_input, crop_pct=0.875)))
    for check in (imagenet_cfg, lambda name: check_imagenet_weights([name])):  # a job's load; the sweep's check
        with pytest.raises(UserError, match=r"ImageNet weights for ResNet50 \(resnet50\.a1_in1k\) expect the input .*crop_pct.: 0\.95"):
            check("ResNet50")
