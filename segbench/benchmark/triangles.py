"""The triangles data set (benchmark §2): generation, and loading any data set in its CSV layout."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segbench.atomic import atomic_path
from segbench.benchmark.png import write_gray_png
from segbench.cache import cache_root
from segbench.errors import BadInput

COUNT = 600
TRAIN_COUNT = 500
SIZE = 512
SEED = 42
TRAIN_CSV = "train.csv"
VALIDATION_CSV = "validation.csv"
DATASET_VERSION = "triangles-v1"
# dataset_sha256 of the generated set: a cached copy whose files differ is regenerated.
TRIANGLES_SHA256 = "455bdedfb1b55927d9ff1363c44c6122ed0c14014afbfc96e8082abe8ff773b0"


class DataError(BadInput):
    """A data set file is missing, unreadable or of the wrong kind; the message names the file."""


def triangle_recipe(count: int = COUNT, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (count, 3, 2) as (x, y) and RGB colours (count, 3), drawn as benchmark §2 says."""
    rng = np.random.RandomState(seed)
    vertices = rng.randint(20, 492, size=(count, 3, 2))
    colours = rng.randint(128, 256, size=(count, 3))
    return vertices, colours


def rasterise_triangle(vertices: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Boolean mask of pixels whose integer centres lie inside or on the triangle.

    Exact integer edge functions, so the result is the same on every platform.
    """
    (x0, y0), (x1, y1), (x2, y2) = (tuple(int(v) for v in p) for p in vertices)
    mask = np.zeros((size, size), dtype=bool)
    if (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0) == 0:  # degenerate: a line or a point
        return mask
    # Only pixel centres within the vertices' bounding box can lie inside or on the triangle.
    left, right = max(min(x0, x1, x2), 0), min(max(x0, x1, x2), size - 1)
    top, bottom = max(min(y0, y1, y2), 0), min(max(y0, y1, y2), size - 1)
    if left > right or top > bottom:
        return mask
    ys = np.arange(top, bottom + 1, dtype=np.int64)[:, None]
    xs = np.arange(left, right + 1, dtype=np.int64)[None, :]

    def edge(ax: int, ay: int, bx: int, by: int) -> np.ndarray:
        return (bx - ax) * (ys - ay) - (by - ay) * (xs - ax)

    e0, e1, e2 = edge(x0, y0, x1, y1), edge(x1, y1, x2, y2), edge(x2, y2, x0, y0)
    inside = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
    mask[top : bottom + 1, left : right + 1] = inside
    return mask


def gray_level(rgb: np.ndarray) -> int:
    """ITU-R 601 luma of an RGB colour, rounded half up in exact integer arithmetic."""
    r, g, b = (int(v) for v in rgb)
    return (299 * r + 587 * g + 114 * b + 500) // 1000


def render(
    vertices: np.ndarray, colour: np.ndarray, size: int = SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask) as uint8 arrays: the filled gray triangle on black, and 255 where gray > 10."""
    image = np.where(rasterise_triangle(vertices, size), np.uint8(gray_level(colour)), np.uint8(0))
    mask = np.where(image > 10, np.uint8(255), np.uint8(0))
    return image.astype(np.uint8), mask


def generate(out: Path, count: int = COUNT, train_count: int = TRAIN_COUNT) -> Path:
    """Write the data set into `out` (created atomically: a half-written folder never appears)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose an empty or new folder")
    with atomic_path(out, folder=True) as staging:
        (staging / "images").mkdir()
        (staging / "masks").mkdir()
        vertices, colours = triangle_recipe(count)
        rows = []
        for i in range(count):
            image, mask = render(vertices[i], colours[i])
            name = f"{i + 1:04d}.png"
            write_gray_png(staging / "images" / name, image)
            write_gray_png(staging / "masks" / name, mask)
            rows.append((f"images/{name}", f"masks/{name}"))
        _write_csv(staging / TRAIN_CSV, rows[:train_count])
        _write_csv(staging / VALIDATION_CSV, rows[train_count:])
    return out


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("x", "y"))
        writer.writerows(rows)


def default_data_dir() -> Path:
    """Where the generated data set is cached."""
    return cache_root() / DATASET_VERSION


def ensure_data(data_dir: Path | None) -> Path:
    """The data folder to use: `data_dir` as given, or the cached triangles, generated once."""
    if data_dir is not None:
        return Path(data_dir)
    cached = default_data_dir()
    if not (cached / TRAIN_CSV).is_file():
        generate(cached)
    return cached


@dataclass(frozen=True)
class Split:
    """A data split held in memory as its files hold it: images and masks as uint8, shape
    (n, h, w, 1), and the sha256 of the files they were read from (see `dataset_sha256`).
    `batch` gives the float32 arrays a step trains on; kept as uint8, the 600 images of the
    triangles take 300 MiB instead of 1.2 GiB."""

    images: np.ndarray
    masks: np.ndarray
    sha256: str = ""
    listed: int | None = None  # the pairs its CSV lists, where only the first were decoded

    def __len__(self) -> int:
        return len(self.images)

    @property
    def pairs(self) -> int:
        """The image/mask pairs of the split, decoded or not (a data set's size)."""
        return len(self.images) if self.listed is None else self.listed

    def batch(
        self, rows: np.ndarray | slice, data_format: str = "channels_last"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the images at `rows`: float32 in [0, 1], shape (len(rows), h, w, 1), or
        (len(rows), 1, h, w) for channels_first (masks too: values between 0 and 255 are soft
        labels, which the loss clips)."""
        x, y = _scaled(self.images[rows]), _scaled(self.masks[rows])
        return in_layout(x, data_format), in_layout(y, data_format)


def in_layout(batch: np.ndarray, data_format: str) -> np.ndarray:
    """A channels-last (n, h, w, c) batch in `data_format`: itself, or (n, c, h, w) for
    channels_first (a view without a copy for one channel)."""
    if data_format == "channels_last":
        return batch
    return np.ascontiguousarray(np.moveaxis(batch, -1, 1))


def _scaled(pixels: np.ndarray) -> np.ndarray:
    # float32(pixel) × float32(1/255), as the values have always been computed.
    return np.multiply(pixels, np.float32(1 / 255), dtype=np.float32)


def read_csv(csv_path: Path) -> list[tuple[Path, Path]]:
    """(image, mask) paths listed in a data set CSV, resolved against the CSV's folder."""
    if not csv_path.is_file():
        raise DataError(
            f"{csv_path}: file not found (a data folder holds {TRAIN_CSV} and {VALIDATION_CSV})"
        )
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as f:  # a spreadsheet's BOM too
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{csv_path}: cannot read ({e})") from None
    if not rows or [c.strip() for c in rows[0]] != ["x", "y"]:
        raise DataError(f"{csv_path}: the first row must be the header 'x,y'")
    pairs = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise DataError(f"{csv_path}:{line}: expected two columns (image path, mask path)")
        pairs.append((csv_path.parent / row[0].strip(), csv_path.parent / row[1].strip()))
    if not pairs:
        raise DataError(f"{csv_path}: lists no images")
    return pairs


def read_gray(path: Path, size: int, decode: bool = True) -> tuple[np.ndarray | None, bytes]:
    """One 8-bit grayscale image as uint8 (size, size), and the file's bytes; DataError naming
    the file otherwise. The size is checked before the pixels are decoded, so a huge image (a
    decompression bomb) is refused without decoding it. `decode` False: the header checked,
    the pixels not decoded (None)."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e.__class__.__name__})") from None
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode, dims = img.mode, img.size
            if dims != (size, size):
                raise DataError(f"{path}: {dims[0]}×{dims[1]} pixels, expected {size}×{size}")
            if mode != "L":
                raise DataError(
                    f"{path}: image mode {mode}, expected 8-bit grayscale (L); convert it first"
                )
            if not decode:
                return None, data
            img.load()
            pixels = np.asarray(img)
    except Image.DecompressionBombError:
        raise DataError(f"{path}: image too large to open safely; expected {size}×{size}") from None
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DataError(f"{path}: not a readable image ({e.__class__.__name__})") from None
    return pixels, data


def load_split(csv_path: Path, size: int = SIZE, decode: int | None = None) -> Split:
    """Load the image/mask pairs a CSV lists into memory, as uint8: every pair, or the first
    `decode` (the ones a run of that many images reads). Every file is read, its header
    checked and its bytes hashed either way: the digest is the whole split's."""
    pairs = read_csv(Path(csv_path))
    kept = len(pairs) if decode is None else min(decode, len(pairs))
    images = np.empty((kept, size, size, 1), dtype=np.uint8)
    masks = np.empty_like(images)
    digest = hashlib.sha256()
    for i, (image_path, mask_path) in enumerate(pairs):
        image, image_bytes = read_gray(image_path, size, decode=i < kept)
        mask, mask_bytes = read_gray(mask_path, size, decode=i < kept)
        if i < kept:
            images[i, ..., 0], masks[i, ..., 0] = image, mask
        for data in (image_bytes, mask_bytes):
            digest.update(hashlib.sha256(data).digest())
    return Split(images, masks, digest.hexdigest(), None if kept == len(pairs) else len(pairs))


def dataset_sha256(train: Split, validation: Split) -> str:
    """The digest of a data set: its files' contents in CSV order, training split first.

    File names and folders do not enter it, so the same images anywhere give the same digest.
    """
    return hashlib.sha256(f"{train.sha256}\n{validation.sha256}\n".encode()).hexdigest()


def load_dataset(
    data_dir: Path, size: int = SIZE, train_images: int | None = None
) -> tuple[Split, Split]:
    """(train, validation) splits of a data folder in the triangles CSV layout; with
    `train_images`, only that many training pairs decoded and no validation pair (a run of
    steps reads no more; the digests are the whole splits')."""
    data_dir = Path(data_dir)
    return (
        load_split(data_dir / TRAIN_CSV, size, train_images),
        load_split(data_dir / VALIDATION_CSV, size, None if train_images is None else 0),
    )
