"""`python -m harness status` loads harness.cluster: it must not pull in a heavy library."""
import subprocess
import sys

HEAVY = {"torch", "timm", "submitit", "pandas", "numpy", "rich", "PIL"}


def test_cluster_modules_import_only_the_standard_library():
    code = ("import sys; import harness.cluster.site, harness.cluster.sbatch, harness.cluster.accounting; "
            "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert HEAVY.isdisjoint(done.stdout.split())
