"""`python -m harness status` loads harness.cluster (and a backend's modules); the use cases load the jobs'
module to hand it over: none of them may pull in a heavy library."""
import subprocess
import sys

from patience import HUNG_S

HEAVY = {"torch", "timm", "submitit", "pandas", "numpy", "rich", "PIL"}


def test_cluster_modules_import_only_the_standard_library():
    code = ("import sys; import harness.cluster.slurm.backend, harness.cluster.slurm.site, harness.cluster.local, harness.jobs; "
            "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=HUNG_S)
    assert HEAVY.isdisjoint(done.stdout.split())
