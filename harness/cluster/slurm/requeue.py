"""A training task that submitit requeues: on a time limit or a preemption submitit calls checkpoint(),
and the task is queued again with the same run id, to resume from the run's last completed epoch. Only
the jobs import submitit's helpers through this module (status does not)."""
from typing import Any

import submitit


class Requeueable(submitit.helpers.Checkpointable):
    """Runs `task` (a run's training, given its id) as submitit's checkpointable callable."""

    def __init__(self, task: Any) -> None:
        self.task = task

    def __call__(self, *args: Any) -> Any:
        return self.task(*args)
