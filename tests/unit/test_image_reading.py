"""Reading an image: regular files only (never blocking on a FIFO or reading a device for ever), sizes
checked from the header before anything is decoded, and the picture upright as its EXIF says."""
import os

import numpy as np
import pytest
from PIL import Image

from harness.data.images import MAX_IMAGE_PIXELS, UndecodableImage, decode, find_images, inspect_image


def test_what_is_not_a_regular_file_is_refused_at_once_with_what_it_is(tmp_path):
    os.mkfifo(tmp_path / "fifo.png")  # no writer: a blocking open would wait for ever, and the test with it
    (tmp_path / "folder.jpg").mkdir()
    for path, kind in ((tmp_path / "fifo.png", "a FIFO"), ("/dev/zero", "a device")):
        with pytest.raises(UndecodableImage, match=kind):
            decode(path)
    with pytest.raises(IsADirectoryError, match="a folder"):  # where a manifest lists a file: the storage's fault
        decode(tmp_path / "folder.jpg")
    assert find_images(tmp_path) == [tmp_path / "fifo.png", tmp_path / "folder.jpg"]  # listed, so the reason is told
    assert [inspect_image(p).error for p in find_images(tmp_path)] == ["a FIFO, not an image file", "a folder, not an image file"]


@pytest.mark.parametrize(("size", "reason"), [((200_000, 1), "one side more than"), ((10_000, 10_000), "more than the")])
def test_sizes_are_refused_from_the_header_before_decoding(tmp_path, size, reason):
    path = tmp_path / "bomb.png"
    Image.new("1", size).save(path)
    assert path.stat().st_size < 100_000 and size[0] * size[1] * 3 > 500_000  # small on disk, large decoded
    with pytest.raises(UndecodableImage, match=reason):
        decode(path)
    assert size[0] * size[1] > MAX_IMAGE_PIXELS or max(size) / min(size) > 20


def test_exif_orientation_is_applied(tmp_path):
    """A camera's portrait photograph stored sideways with orientation 6 (rotate 90 degrees clockwise to
    view) decodes as it is viewed: tall, with the stored top row now the right-hand column."""
    stored = np.zeros((2, 4, 3), np.uint8)  # 4 wide, 2 high, as the sensor wrote it
    stored[0, :, 0] = 255  # the stored top row is red
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "sideways.png", exif=exif)
    viewed = np.asarray(decode(tmp_path / "sideways.png")[0])
    assert viewed.shape == (4, 2, 3)
    assert (viewed[:, -1, 0] == 255).all() and (viewed[:, 0, 0] == 0).all()
    Image.fromarray(stored).save(tmp_path / "plain.png")
    assert np.array_equal(np.asarray(decode(tmp_path / "plain.png")[0]), stored)  # no orientation: as stored
