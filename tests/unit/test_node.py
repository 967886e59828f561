"""What a job does on its node, as far as it can be seen without training: where it writes."""
from harness import sweeps
from harness.cluster.node import Preprocess
from harness.data.demo import make_demo
from harness.store.records import read_spec, write_spec
from harness.training.config import train_options


def test_a_moved_results_folder_builds_its_caches_inside_itself(tmp_path):
    """sweep.json keeps the cache_root of the folder the sweep started in; after the results folder is
    moved, a resumed job builds its caches in the folder that now holds it, never at the old path."""
    make_demo(tmp_path / "data", per_class=21, size=16)
    request = sweeps.SweepRequest(dataset=str(tmp_path / "data"), models=["MobileNetV2"], seeds=1,
                                  train=train_options(image_size=32), results=tmp_path / "before", name="moved")
    sweep, spec = sweeps.plan(request, {"executor": "local"})
    sweep.folder.mkdir(parents=True)
    write_spec(sweep, spec)
    (tmp_path / "before").rename(tmp_path / "after")

    caches = Preprocess(tmp_path / "after" / "moved")()
    assert read_spec(sweeps.SweepPaths(tmp_path / "after" / "moved")).cache_root == str(tmp_path / "before" / "cache")
    assert not (tmp_path / "before").exists()
    assert len(caches) == 1 and list((tmp_path / "after" / "cache").iterdir())
