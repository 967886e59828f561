"""The preprocessing job (CPU partition): decode and resize every image once into the sweep's caches."""
import logging
from pathlib import Path

from harness.atomic import write_json_atomic
from harness.data.cache import build_cache, cache_header
from harness.results import read_sweep
from harness.sweep import resize_keys
from jobs import available_cpus, configure_logging

log = logging.getLogger("jobs.preprocess")
LOG_EVERY = 0.1  # log a line every 10% of the images


class Preprocess:
    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)

    def __call__(self) -> list[str]:
        configure_logging()
        spec = read_sweep(self.sweep_dir)
        progress_file = self.sweep_dir / "preprocess" / "progress.json"
        workers = available_cpus()
        keys = resize_keys(spec)
        built, headers = [], []
        for number, key in enumerate(keys, 1):
            next_log = [0.0]

            def report(done: int, total: int, rate: float) -> None:
                write_json_atomic(progress_file, {"state": "running", "cache": number, "caches": len(keys),
                                                  "done": done, "total": total, "images_per_s": rate})
                if done / total >= next_log[0] or done == total:
                    log.info("cache %d/%d %s: %d/%d images, %.0f images/s", number, len(keys), key, done, total, rate)
                    next_log[0] += LOG_EVERY

            folder = build_cache(Path(spec["dataset"]), key, Path(spec["cache_root"]), workers, report)
            header = cache_header(folder)
            for skipped in header["skipped"]:
                log.warning("skipped %s: %s", skipped["path"], skipped["reason"])
            built.append(str(folder))
            headers.append(header)
        write_json_atomic(progress_file, {"state": "done", "caches": built, "workers": workers,
                                          "images_per_s": [h["images_per_s"] for h in headers],
                                          "skipped": sum(len(h["skipped"]) for h in headers)})
        return built
