"""harness.cluster.slurm.sbatch: sbatch's own forms accepted, everything else refused in one line naming the option."""
import re
import string
from pathlib import Path

import pytest

from harness.cluster.slurm.sbatch import (
    check_constraint,
    check_node_list,
    check_slurm_name,
    format_gres,
    format_mem,
    format_time,
    parse_gres,
    parse_mem,
    parse_sbatch_extra,
    parse_time,
)
from harness.errors import UserError

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("text, minutes", [
    ("90", 90), ("0:30", 1), ("90:30", 91), ("04:00:00", 240), ("100:00:00", 6000), ("1-12", 2160),
    ("1-12:30", 2190), ("1-00:00:01", 1441), ("2-00:00:00", 2880), ("0-00:01", 1)])
def test_parse_time_reads_every_sbatch_form(text, minutes):
    assert parse_time(text) == minutes


@pytest.mark.parametrize("text", ["0", "00:00:00", "0-00", "-5", "UNLIMITED", "infinite", "1:60", "1:60:00",
                                  "1-24", "4h", "", " 90", "90\n", "1.5", "١٢", "1-", ":30", "1:2:3:4"])
def test_parse_time_refuses_what_a_task_cannot_have(text):
    with pytest.raises(UserError, match=r"^--time .* accepted forms: MIN, MIN:SEC, HH:MM:SS, D-HH"):
        parse_time(text)


def test_format_time_is_sbatch_text_that_reads_back():
    assert (format_time(240), format_time(1441), format_time(2880)) == ("04:00:00", "1-00:01:00", "2-00:00:00")
    for minutes in (1, 59, 60, 1439, 1440, 10_000):
        assert parse_time(format_time(minutes)) == minutes


@pytest.mark.parametrize("text, megabytes", [
    ("8000", 8000),  # a bare number is megabytes, as sbatch reads it (it once became 8000GB)
    ("8000M", 8000), ("8000MB", 8000), ("8G", 8192), ("8gb", 8192), ("512000m", 512000), ("2T", 2 * 1024 * 1024),
    ("1K", 1), ("1025K", 2)])
def test_parse_mem_reads_megabytes_like_sbatch(text, megabytes):
    assert parse_mem(text) == megabytes


@pytest.mark.parametrize("text", ["0", "0G", "1.5G", "8 G", "-1", "8P", "", "8000\n", "G", "8GiB"])
def test_parse_mem_refuses_zero_and_garbage(text):
    with pytest.raises(UserError, match=r"^--mem .* accepted forms: a whole number of megabytes"):
        parse_mem(text)


def test_format_mem_reads_back():
    assert (format_mem(4000), format_mem(8192)) == ("4000M", "8G")
    for megabytes in (1, 1000, 1024, 128000, 131072):
        assert parse_mem(format_mem(megabytes)) == megabytes


@pytest.mark.parametrize("text, parsed", [
    ("gpu", (None, 1)), ("gpu:2", (None, 2)), ("gpu:p100", ("p100", 1)), ("gpu:p100:1", ("p100", 1)),
    ("gpu:a100_80g:4", ("a100_80g", 4))])
def test_parse_gres_reads_gpu_requests(text, parsed):
    assert parse_gres(text) == parsed
    assert parse_gres(format_gres(*parsed)) == parsed


@pytest.mark.parametrize("text", [
    "p100:1",  # sbatch would read a GRES named p100, which no site has
    "gpu:0", "gpu:", "gpu::1", "gpu:a:b:1", "mps:100", "GPU:1", "gpu:²", "gpu:p100:1\n", "gpu:p 100:1", ""])
def test_parse_gres_refuses_other_forms(text):
    with pytest.raises(UserError, match=r"^--gres .* accepted forms: gpu, gpu:COUNT, gpu:TYPE or gpu:TYPE:COUNT"):
        parse_gres(text)


# Every character a batch script line could meet: ASCII, control characters, and a few that are not ASCII
# (é, the Unicode line and paragraph separators, NEL).
EVERY_CHARACTER = [chr(c) for c in range(128)] + ["é", "\u2028", "\u2029", "\x85", "\ufeff"]
NAME_CHARACTERS = set(string.ascii_letters + string.digits + "._-")
CHECKS = {
    "--account": (check_slurm_name, NAME_CHARACTERS),
    "--exclude": (check_node_list, NAME_CHARACTERS | set(",[]")),
    "--constraint": (check_constraint, NAME_CHARACTERS | set("&|,*[]")),
}


@pytest.mark.parametrize("option", CHECKS)
def test_each_name_option_accepts_exactly_its_characters(option):
    check, allowed = CHECKS[option]
    for char in EVERY_CHARACTER:
        value = f"ab{char}cd"
        if char in allowed:
            assert check(option, value) == value
        else:
            with pytest.raises(UserError, match=f"^{re.escape(option)} .* is not valid; accepted forms: "):
                check(option, value)


@pytest.mark.parametrize("option", CHECKS)
@pytest.mark.parametrize("value", ["gpu\n", "gpu\n#SBATCH --wrap=x", "\ngpu", "gpu\r", "gpu\x00", "-gpu", "--gpu",
                                   "gpu'", 'gpu"', "gpu#1", "$gpu", "`gpu`", "gpu part", "", "gpu\u2028"])
def test_each_name_option_refuses_what_would_break_an_sbatch_line(option, value):
    check, _ = CHECKS[option]
    with pytest.raises(UserError) as error:
        check(option, value)
    assert "\n" not in str(error.value) and "\r" not in str(error.value)  # one line, the value shown escaped


def test_the_old_check_let_a_trailing_newline_through():
    # re.match with ^...$ matches before a final newline: the line that followed was lost.
    assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", "my-project\n")
    with pytest.raises(UserError, match=r"^--account 'my-project\\n' is not valid"):
        check_slurm_name("--account", "my-project\n")


def test_gres_type_refuses_every_character_a_name_refuses():
    for char in set(EVERY_CHARACTER) - NAME_CHARACTERS - {":"}:
        with pytest.raises(UserError):
            parse_gres(f"gpu:p1{char}00:1")


def test_sbatch_extra_reads_repeated_key_value_options():
    extra = parse_sbatch_extra(["mail-type=END", "mail-user=me@example.org", "comment=a b $HOME 'q' #1", "licenses=y=z"])
    assert extra == {"mail-type": "END", "mail-user": "me@example.org", "comment": "a b $HOME 'q' #1", "licenses": "y=z"}
    assert parse_sbatch_extra([]) == {}


@pytest.mark.parametrize("item", ["=END", "Mail-Type=END", "mail_type=END", "--mail-type=END",
                                  "mail-type=", "mail type=END", "mail-type=END\n#SBATCH --wrap=x",
                                  "comment=a\rb", "comment=a\x00b", "comment=a\tb", "comment=a\x1bb"])
def test_sbatch_extra_refuses_other_forms_and_line_breaks(item):
    with pytest.raises(UserError, match=r"^--sbatch .* accepted forms: KEY=VALUE"):
        parse_sbatch_extra([item])


@pytest.mark.parametrize("item, why", [
    ("partition=gpu", "use --partition / --cpu-partition"), ("gres=gpu:2", "use --gres"), ("time=10", "use --time"),
    ("mem=1G", "use --mem"), ("account=x", "use --account"), ("array=0-3", "one job array"),
    ("job-name=x", "find the sweep's jobs by their names"), ("output=/tmp/x", "`harness logs` reads it"),
    ("error=/tmp/x", "`harness logs` reads it"), ("wrap=id", "the batch script submitit writes"),
    ("no-requeue", "requeues itself"), ("clusters=other", "this cluster's scheduler"), ("wait", "sweep --wait")])
def test_sbatch_extra_refuses_what_the_harness_sets_and_says_why(item, why):
    key = item.split("=")[0]
    with pytest.raises(UserError, match=f"^--sbatch '{re.escape(item)}': the harness sets --{key} itself; ") as error:
        parse_sbatch_extra([item])
    assert why in str(error.value)


@pytest.mark.parametrize("item, name", [("dep=afterok:1", "dependency"), ("mail-t=END", "mail-type"), ("wck=proj", "wckey"),
                                        ("hol", "hold"), ("time-m=5", "time-min"), ("time=5", None)])
def test_a_key_is_the_option_sbatch_reads_it_as(item, name):
    """getopt_long, which reads #SBATCH lines, takes an option's whole name, or a unique prefix of it: so does
    the harness, and it writes the whole name (`time` is --time itself, reserved, though --time-min begins so)."""
    if name is None:
        with pytest.raises(UserError, match="the harness sets --time itself"):
            parse_sbatch_extra([item])
    else:
        assert list(parse_sbatch_extra([item])) == [name]


@pytest.mark.parametrize("item, said", [
    ("arr=0-9999", "--arr is --array to sbatch: the harness sets --array itself"),
    ("tasks-per-node=64", "the harness sets --tasks-per-node itself; use --gpus-per-run and --nodes-per-run"),
    ("ntasks-per=64", "--ntasks-per is short for several sbatch options"),
    ("gpus-per-n=8", "--gpus-per-n is --gpus-per-node to sbatch: the harness sets --gpus-per-node itself"),
    ("requeue=x", "--requeue takes no value; give it alone, as --sbatch requeue"),
    ("mail-type", "--mail-type takes a value"), ("nope=1", "sbatch has no option --nope")])
def test_a_reserved_option_by_another_name_or_a_value_sbatch_would_not_read_is_refused(item, said):
    with pytest.raises(UserError, match=re.escape(said)):
        parse_sbatch_extra([item])


def test_an_option_that_takes_no_value_is_given_alone():
    assert parse_sbatch_extra(["hold", "requeue", "exclusive"]) == {"hold": True, "requeue": True, "exclusive": True}
    assert parse_sbatch_extra(["exclusive=user"]) == {"exclusive": "user"}  # an optional value may be given


@pytest.mark.parametrize("value", ["afterok:123", "afterany:1:2,afternotok:3_4", "after:5+10", "afterok:1?afterok:2",
                                   "singleton", "afterok:1,singleton"])
def test_a_dependency_on_another_workflows_job_is_taken(value):
    assert parse_sbatch_extra([f"dependency={value}"]) == {"dependency": value}


@pytest.mark.parametrize("value", ["afterok", "afterok:", "afterok:x", "before:1", "afterok:1,", "afterok:1,afterok:2?", "ok:1",
                                   "afterok:1 ; rm -rf ~"])
def test_a_dependency_slurm_would_not_read_is_refused(value):
    with pytest.raises(UserError, match=r"^--sbatch dependency= .* accepted forms: TYPE:JOBID"):
        parse_sbatch_extra([f"dependency={value}"])


def test_sbatch_extra_refuses_a_key_given_twice():
    with pytest.raises(UserError, match="mail-type= is given twice"):
        parse_sbatch_extra(["mail-type=END", "mail-type=FAIL"])


@pytest.mark.parametrize("job_id", ["123", "123_4"])
@pytest.mark.parametrize("stream", ["out", "err"])
def test_the_log_of_a_job_is_where_submitit_writes_it(tmp_path, job_id, stream):
    from submitit.core.utils import JobPaths

    from harness.cluster.slurm.backend import job_log
    from harness.store.paths import SweepPaths

    sweep = SweepPaths(tmp_path / "s")
    paths = JobPaths(sweep.logs, job_id=job_id, task_id=0)
    assert job_log(sweep, job_id, stream) == (paths.stdout if stream == "out" else paths.stderr)


def _scripts(tmp_path, profile) -> str:
    """The batch scripts `sweep --dry-run` prints for one run on the local cluster (as scontrol described it)."""
    from harness.cluster.base import Placement
    from harness.cluster.slurm.backend import SlurmBackend, site_defaults
    from harness.cluster.slurm.site import parse_site
    from harness.jobs import work
    from harness.store.paths import SweepPaths

    site = parse_site(*((DATA / f"harness-{kind}.txt").read_text() for kind in ("partition", "node", "config")))
    sweep = SweepPaths(tmp_path / "s1")
    resolved = profile.filled(site_defaults(site, profile))
    return "\n".join(SlurmBackend().scripts(sweep, resolved, {"MobileNetV2-s0": Placement()}, work(sweep.folder)))


def test_the_sites_wckey_reaches_every_batch_script_in_place_of_submitits(tmp_path):
    """No --wckey but the sweep's: submitit's default (`--wckey=submitit`) would override the site's
    accounting key. --sbatch wckey= and a profile's [sbatch] wckey reach each job, the option over the profile."""
    from harness.cluster.slurm.options import profile_of

    assert "--wckey" not in _scripts(tmp_path, profile_of({}))  # the site's default key stands
    given = _scripts(tmp_path, profile_of({"sbatch": ["wckey=myproj"]}))
    assert given.count("#SBATCH --wckey=myproj\n") == 2 and given.count("--wckey") == 2  # preprocessing and training
    site_profile = tmp_path / "site.toml"
    site_profile.write_text('[sbatch]\nwckey = "site-key"\nhold = true\n')
    from_profile = _scripts(tmp_path, profile_of({"profile": str(site_profile)}))
    assert from_profile.count("#SBATCH --wckey=site-key\n") == 2 and from_profile.count("#SBATCH --hold\n") == 2
    both = _scripts(tmp_path, profile_of({"profile": str(site_profile), "sbatch": ["wck=mine"]}))
    assert both.count("#SBATCH --wckey=mine\n") == 2 and "site-key" not in both


def test_exclusive_asks_for_whole_nodes_for_training_alone(tmp_path):
    """--exclusive (or a profile's exclusive = true) puts `--exclusive` in the training job's script; without
    it no script carries the option in any form (sbatch refuses `--exclusive=False`)."""
    from harness.cluster.slurm.options import profile_of

    assert "--exclusive" not in _scripts(tmp_path, profile_of({}))
    whole = _scripts(tmp_path, profile_of({"exclusive": True}))
    assert whole.count("#SBATCH --exclusive\n") == 1 and whole.count("--exclusive") == 1
