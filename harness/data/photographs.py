"""The photographs the built-in demo is made from, inside the wheels of packages the harness installs
(nothing fetched over the network; scikit-image, which serves the demo alone, comes with the `demo`
extra), found without importing them or torch: a Python that lacks one is refused in one line, at once
(`data demo`, and a sweep on a demo still to be built, at planning)."""
import importlib.util
from pathlib import Path

from harness.errors import UserError

# Each package, its folder of sample data, and the photographs taken from it. Not the Hubble deep field:
# its crops are mostly black, and a gain pattern on black pixels leaves no fingerprint to learn.
PHOTOGRAPHS = {
    "skimage": ("data", (
        "astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg", "retina.jpg",
        "ihc.png", "camera.png", "brick.png", "grass.png", "gravel.png", "moon.png",
        "coins.png", "page.png", "cell.png", "clock_motion.png", "text.png", "microaneurysms.png")),
    "sklearn": ("datasets/images", ("china.jpg", "flower.jpg")),
    "matplotlib": ("mpl-data/sample_data", ("grace_hopper.jpg",)),
}
DISTRIBUTIONS = {"skimage": "scikit-image", "sklearn": "scikit-learn"}  # what pip calls the packages named above
PHOTOGRAPH_COUNT = sum(len(names) for _, names in PHOTOGRAPHS.values())


def photograph_folders() -> dict[str, Path]:
    """Each package's folder of sample photographs; a package this Python lacks (scikit-image comes with the
    `demo` extra alone) refused in one line, before anything is written."""
    folders = {}
    for package, (folder, _) in PHOTOGRAPHS.items():
        spec = importlib.util.find_spec(package)  # found, not imported: matplotlib's import costs a second
        if spec is None or spec.origin is None:
            raise UserError(f"the built-in demo is made from photographs that ship with {DISTRIBUTIONS.get(package, package)}, "
                            "which this Python lacks: install harness's demo extra, `python -m pip install -e '.[demo]'` in "
                            "the checkout (or `pip install 'harness[demo]'`)")
        folders[package] = Path(spec.origin).parent / folder
    return folders
