"""One colour per architecture on every figure of the report, the dashboard and `history --format png`, so
that a reader who has found ResNet50 on one figure finds it on the next. Plain Python: no matplotlib."""
import zlib
from collections.abc import Iterable

from harness.zoo.registry import MODEL_NAMES

# The paper's eight, in the zoo's order: the first eight of matplotlib's tab10.
PAPER_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
# Any other architecture (a timm model): one of these by a stable hash of its name (tab10's last two, then
# the darker half of tab20b and tab20c), never one of the eight's.
OTHER_COLOURS = ("#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d",
                 "#31a354", "#756bb1", "#636363")
# The variants of one architecture on one figure (a scaling sweep's rank counts, the ablation's inputs), in turn.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINE_STYLES = ("-", "--", "-.", ":")


def architecture_of(label: str) -> str:
    """A leaderboard row's architecture: 'ResNet50 [x2]' is ResNet50's."""
    return label.split(" [", 1)[0]


def architecture_colours(labels: Iterable[str]) -> dict[str, str]:
    """Each row's colour, as a hex string matplotlib reads: its architecture's (its variants share it). The
    paper's eight have theirs always; any other takes a colour by a stable hash of its name, and where two on
    one page meet there, the later in name order the next free one."""
    labels = list(dict.fromkeys(labels))
    names = sorted({architecture_of(label) for label in labels})
    colours = {name: PAPER_COLOURS[MODEL_NAMES.index(name) % len(PAPER_COLOURS)] for name in names if name in MODEL_NAMES}
    for name in (name for name in names if name not in MODEL_NAMES):
        start = zlib.crc32(name.encode())
        free = [OTHER_COLOURS[(start + step) % len(OTHER_COLOURS)] for step in range(len(OTHER_COLOURS))]
        colours[name] = next((colour for colour in free if colour not in colours.values()), free[0])
    return {label: colours[architecture_of(label)] for label in labels}


def variant_numbers(labels: Iterable[str]) -> dict[str, int]:
    """Each row's place among its architecture's rows (0, 1, ...): the variants of one architecture, which
    share its colour, take MARKERS or LINE_STYLES in turn."""
    seen: dict[str, int] = {}
    numbers = {}
    for label in labels:
        numbers[label] = seen.get(architecture_of(label), 0)
        seen[architecture_of(label)] = numbers[label] + 1
    return numbers
