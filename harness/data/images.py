"""Finding image files and decoding them into RGB, whatever Pillow opens them as."""
import errno
import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, not a grey band
# The largest image read, checked from its header before it is decoded: a few hundred bytes of PNG can
# declare gigapixels (a decompression bomb), and a long thin image grows by its aspect ratio when its
# short side is resized to the network's input. A face photograph is far inside both bounds.
MAX_IMAGE_PIXELS = 50_000_000
MAX_ASPECT_RATIO = 20
MAX_FILE_BYTES = 512 * 2**20
EXIF_ORIENTATION = 0x0112
HASH_SIDE = 8  # the difference hash: 8 x 8 comparisons of neighbouring pixels, 64 bits


class UndecodableImage(ValueError):
    """A file that does not decode into an image."""


def find_images(folder: Path) -> list[Path]:
    """Everything under folder, any depth, named as an image (any letter case of the extension), in a
    stable order: a folder or a FIFO so named is listed too, and inspect_image says why it is none."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def read_image_file(path: Path) -> bytes:
    """A file's bytes, where it is a regular file of at most MAX_FILE_BYTES; else UndecodableImage saying
    what it is (a FIFO, a device: opened without blocking, never read). A file that cannot be opened or
    read, or a folder, raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):  # as a read would fail: where a manifest lists a file, the storage's fault
            raise IsADirectoryError(errno.EISDIR, "a folder, not an image file", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise UndecodableImage(f"{'a FIFO' if stat.S_ISFIFO(info.st_mode) else 'a device or socket'}, not an image file")
        if info.st_size > MAX_FILE_BYTES:
            raise UndecodableImage(f"{info.st_size / 2**20:.0f} MiB, more than the {MAX_FILE_BYTES // 2**20} MiB an image may hold")
        chunks = []
        while chunk := os.read(fd, 2**20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(read_image_file(path)).hexdigest()


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any mode: 16-bit greyscale is scaled (Pillow would clip it), alpha is dropped, CMYK converted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Pillow's convert("L") clips 16-bit values at 255 instead of scaling them.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


def check_dimensions(width: int, height: int) -> None:
    """UndecodableImage where an image declares more than MAX_IMAGE_PIXELS or MAX_ASPECT_RATIO."""
    if width * height > MAX_IMAGE_PIXELS:
        raise UndecodableImage(f"{width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} an image may have")
    if max(width, height) > MAX_ASPECT_RATIO * max(1, min(width, height)):
        raise UndecodableImage(f"{width}x{height} pixels, one side more than {MAX_ASPECT_RATIO} times the other")


def decode_bytes(data: bytes) -> tuple[Image.Image, str]:
    """Decode a file's bytes fully: (RGB image, upright as its EXIF orientation says; the file's format),
    or raise UndecodableImage with the reason. Its size is checked from the header, before decoding."""
    if not data:
        raise UndecodableImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked here, in one line
            with Image.open(io.BytesIO(data)) as image:
                check_dimensions(*image.size)
                image.load()
                upright = ImageOps.exif_transpose(image) if image.getexif().get(EXIF_ORIENTATION, 1) != 1 else image
                return to_rgb(upright), (image.format or "").upper()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UndecodableImage(str(err) or type(err).__name__) from None


def decode(path: Path) -> tuple[Image.Image, str]:
    """Read and decode one file. A file that cannot be read (missing, no permission, an I/O error, a
    folder) raises OSError: that is a fault of the storage, not of the image, and must not pass as a
    skipped image. A file that reads but does not decode, a FIFO or a device raises UndecodableImage."""
    return decode_bytes(read_image_file(path))


def pixel_digest(image: Image.Image) -> str:
    """sha256 of the decoded RGB pixels and their shape: equal for copies that differ only in metadata or codec."""
    pixels = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    return hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()


def difference_hash(image: Image.Image) -> int:
    """A 64-bit perceptual hash (the difference hash): the image in grey at 9 x 8 pixels, one bit per pair of
    neighbours in a row, set where the right one is brighter. A resized, recompressed or slightly recoloured
    copy keeps most bits; another photograph shares about half."""
    small = np.asarray(image.convert("L").resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.BOX), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    sha256: str
    pixel_sha256: str
    width: int
    height: int
    format: str
    error: str | None = None
    dhash: int | None = None  # the perceptual hash (difference_hash), where asked for


def inspect_image(path: Path, perceptual_hash: bool = False) -> ImageInfo:
    """Hash and decode one file (perceptual_hash: its difference hash too); a decoding error is returned,
    not raised (for process pools); a file that cannot be read raises OSError."""
    try:
        data = read_image_file(path)
    except (UndecodableImage, IsADirectoryError) as err:  # named as an image, found among images: no image
        return ImageInfo(path, "", "", 0, 0, "", error=getattr(err, "strerror", None) or str(err))
    digest = hashlib.sha256(data).hexdigest()
    try:
        image, file_format = decode_bytes(data)
    except UndecodableImage as err:
        return ImageInfo(path, digest, "", 0, 0, "", error=str(err))
    dhash = difference_hash(image) if perceptual_hash else None
    return ImageInfo(path, digest, pixel_digest(image), image.width, image.height, file_format, dhash=dhash)
