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
    return ProcessPoolExecutor(workers, initializer=_end_with_parent)


def _end_with_parent() -> None:
    """In a pool's process: end once its parent has (it is then another process's child), looked at every
    second. Not PR_SET_PDEATHSIG, which fires when the thread that forked it ends, and a pool may start
    its processes from a thread of its own."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()
