"""`python -m harness status` loads harness.cluster (and a backend's modules); the use cases load the jobs'
module to hand it over: none of them may pull in a heavy library."""
import csv
import io
import json
import subprocess
import sys

from patience import HUNG_S
from perf_helpers import make_sweep, record

HEAVY = {"torch", "timm", "submitit", "pandas", "numpy", "rich", "PIL"}


def test_cluster_modules_import_only_the_standard_library():
    code = ("import sys; import harness.cluster.slurm.backend, harness.cluster.slurm.site, harness.cluster.local, harness.jobs; "
            "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=HUNG_S)
    assert HEAVY.isdisjoint(done.stdout.split())


def test_rows_as_json_or_csv_are_printed_without_rich(tmp_path):
    """A script's `status --format json` (or a leaderboard as CSV) draws nothing: rich, 40 ms of a command's
    start, is not imported."""
    make_sweep(tmp_path, "a", [record("ResNet50", 0), record("ResNet50", 1)])
    code = ("import sys; from harness.cli import main; code = main(sys.argv[1:]); "
            "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})), file=sys.stderr); sys.exit(code)")
    for args, rows in ((["status", "--format", "json"], json.loads),
                       (["leaderboard", "--format", "csv"], lambda out: list(csv.DictReader(io.StringIO(out))))):
        done = subprocess.run([sys.executable, "-c", code, *args, "--results", str(tmp_path)], capture_output=True,
                              text=True, timeout=HUNG_S)
        assert done.returncode == 0, done.stderr
        assert len(rows(done.stdout)) == (2 if args[0] == "status" else 1)
        assert "rich" not in done.stderr.splitlines()[-1].split(), args
