"""Finding image files and decoding them into RGB, whatever Pillow opens them as."""
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, not a grey band


class UndecodableImage(ValueError):
    """A file that does not decode into an image."""


def find_images(folder: Path) -> list[Path]:
    """Image files under folder, any depth, any letter case of the extension, in a stable order."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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


def decode_bytes(data: bytes) -> tuple[Image.Image, str]:
    """Decode a file's bytes fully: (RGB image, the file's format), or raise UndecodableImage with the reason."""
    if not data:
        raise UndecodableImage("empty file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return to_rgb(image), (image.format or "").upper()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UndecodableImage(str(err) or type(err).__name__) from None


def decode(path: Path) -> tuple[Image.Image, str]:
    """Read and decode one file. A file that cannot be read (missing, no permission, an I/O error)
    raises OSError: that is a fault of the storage, not of the image, and must not pass as a skipped
    image. A file that reads but does not decode raises UndecodableImage."""
    return decode_bytes(Path(path).read_bytes())


def pixel_digest(image: Image.Image) -> str:
    """sha256 of the decoded RGB pixels and their shape: equal for copies that differ only in metadata or codec."""
    pixels = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    return hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    sha256: str
    pixel_sha256: str
    width: int
    height: int
    format: str
    error: str | None = None


def inspect_image(path: Path) -> ImageInfo:
    """Hash and decode one file; a decoding error is returned, not raised (for process pools); a file that
    cannot be read raises OSError."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        image, file_format = decode_bytes(data)
    except UndecodableImage as err:
        return ImageInfo(path, digest, "", 0, 0, "", error=str(err))
    return ImageInfo(path, digest, pixel_digest(image), image.width, image.height, file_format)
