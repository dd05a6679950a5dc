import hashlib
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segbench.benchmark import triangles
from segbench.benchmark.png import _pack, deflate_runs, encode_gray_png

# sha256 of every generated file, folded as "relative/path sha256\n" lines in path order.
DATASET_SHA256 = "72418b86dc400b4a6ad46feaa514747a68701c607863e0547971783d414fca6b"
FILE_SHA256 = {
    "images/0001.png": "d6469ad74fb77358d8ad9fb6e2762f3e002956b7221eb47bb972d38d337d586d",
    "masks/0001.png": "0f20f4baf9eb1a51242b10e77191e8b0df74b5137c9504c740594152bb859033",
    "images/0600.png": "a0fd6b5637c3441a5084481c5fa43606f8f372cb9e53280c5e465cadd9a68ca4",
    "masks/0600.png": "1b41ab06651de367e25a2f65f2c903caffdbf2030a94c1109d49d224a390c293",
    "train.csv": "05b72dc20ffe719675edb878bff1cb0b1fe761ff9a5dd7ce1209e583e7cfd027",
    "validation.csv": "36199284a7691274fab89d1462e1bd0b014cf55f61edda4de877497a6cd6a71c",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generated_files_match_pinned_sha256(triangles_dir):
    files = sorted(p for p in triangles_dir.rglob("*") if p.is_file())
    assert len(files) == 2 * 600 + 2
    folded = hashlib.sha256()
    for path in files:
        folded.update(f"{path.relative_to(triangles_dir)} {_sha256(path)}\n".encode())
    for name, digest in FILE_SHA256.items():
        assert _sha256(triangles_dir / name) == digest, name
    assert folded.hexdigest() == DATASET_SHA256


def test_csv_layout_splits_500_train_and_100_validation(triangles_dir):
    train = (triangles_dir / "train.csv").read_text().splitlines()
    validation = (triangles_dir / "validation.csv").read_text().splitlines()
    assert train[0] == validation[0] == "x,y"
    assert train[1] == "images/0001.png,masks/0001.png"
    assert len(train) == 501 and len(validation) == 101
    assert validation[-1] == "images/0600.png,masks/0600.png"


def test_images_are_gray_triangles_and_masks_mark_them(triangles_dir):
    vertices, colours = triangles.triangle_recipe()
    image = np.asarray(Image.open(triangles_dir / "images/0001.png"))
    mask = np.asarray(Image.open(triangles_dir / "masks/0001.png"))
    assert image.shape == (512, 512) and image.dtype == np.uint8
    gray = triangles.gray_level(colours[0])
    assert set(np.unique(image)) == {0, gray}
    assert set(np.unique(mask)) == {0, 255}
    np.testing.assert_array_equal(mask == 255, image > 10)
    # Each vertex lies on the triangle's boundary, so its pixel is painted.
    for x, y in vertices[0]:
        assert image[y, x] == gray


def test_recipe_follows_legacy_randomstate_42():
    vertices, colours = triangles.triangle_recipe()
    rng = np.random.RandomState(42)
    np.testing.assert_array_equal(vertices, rng.randint(20, 492, size=(600, 3, 2)))
    np.testing.assert_array_equal(colours, rng.randint(128, 256, size=(600, 3)))
    assert vertices.min() >= 20 and vertices.max() < 492
    assert colours.min() >= 128 and colours.max() < 256


def test_gray_level_is_itu_601_rounded():
    assert triangles.gray_level([255, 255, 255]) == 255
    assert triangles.gray_level([128, 128, 128]) == 128
    assert triangles.gray_level([200, 150, 130]) == round(0.299 * 200 + 0.587 * 150 + 0.114 * 130)


def test_rasteriser_equals_the_edge_test_on_every_pixel_centre():
    # The definition, on the whole grid; the rasteriser only looks inside the bounding box.
    def every_pixel(vertices, size):
        (x0, y0), (x1, y1), (x2, y2) = vertices.tolist()
        ys, xs = np.mgrid[0:size, 0:size]
        e = [
            (bx - ax) * (ys - ay) - (by - ay) * (xs - ax)
            for ax, ay, bx, by in ((x0, y0, x1, y1), (x1, y1, x2, y2), (x2, y2, x0, y0))
        ]
        inside = ((e[0] >= 0) & (e[1] >= 0) & (e[2] >= 0)) | (
            (e[0] <= 0) & (e[1] <= 0) & (e[2] <= 0)
        )
        degenerate = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0) == 0
        return np.zeros_like(inside) if degenerate else inside

    rng = np.random.default_rng(7)
    cases = [rng.integers(-20, 84, size=(3, 2)) for _ in range(300)]  # some outside the image
    cases += [np.array([[3, 3], [3, 3], [3, 3]]), np.array([[0, 0], [63, 63], [30, 30]])]
    cases += [np.array([[-9, -9], [-1, -5], [-4, -1]]), np.array([[0, 0], [63, 0], [0, 63]])]
    for vertices in cases:
        np.testing.assert_array_equal(
            triangles.rasterise_triangle(vertices, 64), every_pixel(vertices, 64), str(vertices)
        )


@pytest.mark.parametrize("run", [1, 2, 3, 4, 5, 258, 259, 260, 261, 262, 515, 516, 517, 1000])
def test_deflate_stream_round_trips_through_zlib(run):
    data = bytes([0] * run + [7] + [9] * run + [1, 2, 3])
    assert zlib.decompress(deflate_runs(data)) == data
    assert zlib.decompress(deflate_runs(b"")) == b""
    codes = [(0b011, 3), (0x1FF, 9), (5, 13), (0, 5), (1, 1)] * 7
    assert _pack(codes, chunk=3) == _pack(codes)  # packed a chunk at a time: the same stream


def test_png_round_trips_arbitrary_pixels():
    pixels = np.random.default_rng(1).integers(0, 256, size=(37, 53), dtype=np.uint8)
    pixels[5:20, :] = 200  # runs too
    with Image.open(__import__("io").BytesIO(encode_gray_png(pixels))) as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), pixels)


def test_generate_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        triangles.generate(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_loader_reads_a_users_own_csv_into_memory(small_dataset):
    train, validation = triangles.load_dataset(small_dataset)
    assert train.images.shape == (8, 512, 512, 1) and validation.images.shape == (4, 512, 512, 1)
    assert train.images.dtype == np.uint8 and train.masks.dtype == np.uint8  # as in the files
    x, y = train.batch(np.arange(len(train)))
    assert x.dtype == y.dtype == np.float32 and x.shape == train.images.shape
    assert x[0].max() == pytest.approx(
        triangles.gray_level(triangles.triangle_recipe()[1][0]) / 255
    )
    assert set(np.unique(y)) == {0.0, 1.0}
    np.testing.assert_array_equal(y > 0, x > 10 / 255)
    # The values steps have always trained on: float32(pixel) × float32(1 / 255).
    expected = train.images.astype(np.float32)
    expected *= 1 / 255
    np.testing.assert_array_equal(x, expected)


def test_a_run_of_steps_decodes_only_the_images_it_reads_and_keeps_the_whole_digest(
    small_dataset,
):
    train, validation = triangles.load_dataset(small_dataset)
    part_train, part_validation = triangles.load_dataset(small_dataset, train_images=3)
    assert part_train.images.shape == (3, 512, 512, 1) and len(part_validation) == 0
    np.testing.assert_array_equal(part_train.images, train.images[:3])
    np.testing.assert_array_equal(part_train.masks, train.masks[:3])
    assert (part_train.sha256, part_validation.sha256) == (train.sha256, validation.sha256)
    assert (part_train.pairs, part_validation.pairs) == (8, 4)  # the data set's size, recorded
    assert len(triangles.load_dataset(small_dataset, train_images=100)[0]) == 8  # all there are


def _dataset_with(tmp_path, triangles_dir, image: Path) -> Path:
    (tmp_path / "train.csv").write_text(f"x,y\n{image},{triangles_dir}/masks/0001.png\n")
    (tmp_path / "validation.csv").write_text(
        f"x,y\n{triangles_dir}/images/0501.png,{triangles_dir}/masks/0501.png\n"
    )
    return tmp_path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b"not a png at all"), "not a readable image"),
        (
            lambda p: Image.new("RGB", (512, 512)).save(p),
            "image mode RGB, expected 8-bit grayscale",
        ),
        (lambda p: Image.new("L", (256, 512)).save(p), "256×512 pixels, expected 512×512"),
    ],
    ids=["missing", "unreadable", "rgb", "wrong-size"],
)
def test_loader_rejects_bad_image_with_one_line_naming_it(tmp_path, triangles_dir, make, message):
    bad = tmp_path / "bad.png"
    make(bad)
    folder = _dataset_with(tmp_path, triangles_dir, bad)
    for train_images in (None, 0):  # also where the image is not decoded: its header is read
        with pytest.raises(triangles.DataError) as err:
            triangles.load_dataset(folder, train_images=train_images)
        text = str(err.value)
        assert "\n" not in text
        assert text.startswith(str(bad)) and message in text


def test_loader_rejects_csv_without_header(tmp_path):
    (tmp_path / "train.csv").write_text("images/0001.png,masks/0001.png\n")
    with pytest.raises(triangles.DataError, match="header 'x,y'"):
        triangles.load_dataset(tmp_path)


def test_loader_names_missing_csv(tmp_path):
    with pytest.raises(triangles.DataError, match=r"train\.csv: file not found"):
        triangles.load_dataset(tmp_path)


def test_generated_folder_is_readable_by_other_users(triangles_dir):
    assert triangles_dir.stat().st_mode & 0o055 == 0o055  # others can list and read it
