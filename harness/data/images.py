"""Finding image files and decoding them into RGB, whatever Pillow opens them as."""
import hashlib
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


def decode(path: Path) -> tuple[Image.Image, str]:
    """Decode a file fully: (RGB image, the file's format), or raise UndecodableImage with the reason."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image), (image.format or "").upper()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        reason = "empty file" if Path(path).stat().st_size == 0 else str(err) or type(err).__name__
        raise UndecodableImage(reason) from None


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    sha256: str
    width: int
    height: int
    format: str
    error: str | None = None


def inspect_image(path: Path) -> ImageInfo:
    """Hash and decode one file; a decoding error is returned, not raised (for process pools)."""
    digest = sha256_of(path)
    try:
        image, file_format = decode(path)
    except UndecodableImage as err:
        return ImageInfo(path, digest, 0, 0, "", error=str(err))
    return ImageInfo(path, digest, image.width, image.height, file_format)
