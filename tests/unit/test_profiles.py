"""Profiles: the merge of site, profile and options; sbatch's own forms; profiles of earlier versions."""
import inspect

import pytest

from harness.cluster.slurm.profile import Profile, load_profile
from harness.errors import UserError


def test_options_override_the_profile_which_overrides_the_site():
    site = Profile(gpu_partition="gpu", gres="gpu:a100:1", mem="64000M", time="04:00:00", cpus_per_task=8)
    profile = Profile().override(mem="32G", account="proj")
    given = profile.override(time="1-12")
    merged = given.filled(site)
    assert (merged.mem, merged.time, merged.account, merged.gres, merged.cpus_per_task) == \
        ("32G", "1-12:00:00", "proj", "gpu:a100:1", 8)
    assert merged.time_min == 36 * 60 and merged.gpu_type == "a100"


@pytest.mark.parametrize("key, value, shown", [
    ("mem", "8000", "8000M"), ("mem", "16G", "16G"), ("time", "90", "01:30:00"), ("time", "4:00:00", "04:00:00"),
    ("gres", "gpu:2", "gpu:2"), ("gres", "gpu:tesla_p100:1", "gpu:tesla_p100:1"),
])
def test_values_are_read_as_sbatch_reads_them(key, value, shown):
    assert getattr(Profile().override(**{key: value}), key) == shown


@pytest.mark.parametrize("key, value", [("mem", "8000GBB"), ("time", "0"), ("gres", "p100:1"), ("account", "proj\n"),
                                        ("cpus_per_task", 0), ("setup", ["module load x\n#SBATCH --x"]),
                                        ("sbatch", {"partition": "other"})])
def test_bad_values_are_refused_in_one_line(key, value):
    with pytest.raises(UserError) as raised:
        Profile().override(**{key: value})
    assert "\n" not in str(raised.value)


def test_a_profile_of_an_earlier_version_reads_as_today(tmp_path):
    old = tmp_path / "old.toml"
    old.write_text('gpu_partition = "gpu"\ngpu_type = "p100"\nmem_gb = 3\ntime_min = 2\npreprocess_time_min = 30\n')
    profile = load_profile(str(old))
    assert (profile.gres, profile.mem, profile.time, profile.preprocess_time) == ("gpu:p100:1", "3G", "00:02:00", "00:30:00")


def test_the_packaged_profiles_load():
    assert load_profile("local").gpu_partition == "gpu" and load_profile("marwan").cpus_per_task == 20


def test_the_one_private_submitit_call_still_has_its_shape():
    """cluster.slurm.batch_script renders submitit's batch script with its private _make_sbatch_string:
    this fails loudly when a submitit release moves it (the pin follows releases this passes on), and
    --dry-run then says so in one line."""
    from submitit.slurm.slurm import SlurmExecutor, _make_sbatch_string

    names = set(inspect.signature(_make_sbatch_string).parameters)
    assert {"command", "folder", "map_count", "additional_parameters", "setup", "gres", "mem", "time"} <= names
    assert isinstance(SlurmExecutor._submitit_command_str, property)


def test_a_submitit_that_moved_its_private_call_costs_dry_run_one_line(monkeypatch):
    import submitit.slurm.slurm

    from harness.cluster.slurm.backend import batch_script
    from harness.errors import UserError

    monkeypatch.delattr(submitit.slurm.slurm, "_make_sbatch_string")
    executor = submitit.SlurmExecutor(folder="/tmp/x")
    with pytest.raises(UserError, match="--dry-run and --check render submitit's batch script through a call submitit"):
        batch_script(executor)
