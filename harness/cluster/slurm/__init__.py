"""Everything Slurm, behind the backend interface (cluster.base), as submitit keeps its Slurm executor in
its own package: backend.py (SlurmBackend: submission through submitit, states, logs, cancel, the site
for `harness cluster`), options.py (its `sweep` options and how they make a Profile), profile.py (the
Profile: partitions, GRES, CPUs, memory, time, sbatch options; packaged and site profiles), sbatch.py
(option forms as sbatch reads them), site.py (the site read from scontrol, a sweep's defaults derived
from it), limits.py (how many jobs it accepts now), accounting.py (job states from sacct and squeue),
environment.py (inside a job: where it runs, and its ranks), requeue.py (a task submitit requeues).
Nothing here is imported at the package's import: `status` loads only what it asks."""
