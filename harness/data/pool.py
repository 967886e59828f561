"""The processes that decode images for a job (the cache's build, `data prepare`, the perturbed test
splits): a ProcessPoolExecutor whose processes end with the process that started them."""
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PARENT_POLL_S = 1.0


def decoding_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` processes that end once the process that started them has ended. Killed alone (the
    OOM killer's SIGKILL), it would leave them waiting for work for ever, with their memory: each keeps open
    the pipe they all read from, so none sees it close."""
    return ProcessPoolExecutor(workers, initializer=_end_with_parent, initargs=(os.getpid(),))


def _end_with_parent(starter: int) -> None:
    """In a pool's process: end once its parent has (it is then another process's child), looked at every
    second, or at once where the process that started the pool (starter) ended before this ran. Not
    PR_SET_PDEATHSIG: Python has no call for it, and it follows the thread that forked, not the process."""
    parent = os.getppid()
    try:
        os.kill(starter, 0)
    except (ProcessLookupError, PermissionError):  # gone (its pid another user's now)
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    try:
        threading.Thread(target=watch, name="end-with-parent", daemon=True).start()
    except RuntimeError:  # no thread to be had (a limit on processes): the pool works on, unwatched
        pass
