"""No measurement is ever lost, and every bad input gets one line (exit code, line, disk)."""

import errno
import importlib.util
import json
import os
import shutil
import signal
import struct
import time
import zlib
from pathlib import Path

import pytest
from cli_helpers import cached_data, error_lines, fake, segbench, start
from typer.testing import CliRunner

from segbench.benchmark import triangles
from segbench.cli import app
from segbench.measure.run import out_folder, pipeline
from segbench.results.result import load_result

# The numerics check is tested in test_cli and test_numerics; these runs skip its seconds.
SMOKE = ["run", "--preset", "smoke", "--device", "cpu", "--no-check-numerics"]


# ---------------------------------------------------------------- data loss


def test_two_runs_at_once_into_one_folder_keep_both_results(small_dataset, tmp_path):
    args = [*SMOKE, "--data", str(small_dataset), "--out", "res"]
    procs = [start(*args, cwd=tmp_path, env=fake(sleep_s=0.05)) for _ in range(2)]
    for proc in procs:
        proc.wait(timeout=300)
        assert proc.returncode == 0, proc.stderr.read()
    files = sorted((tmp_path / "res").glob("*.json"))
    assert len(files) == 2
    assert all(load_result(f).status == "complete" for f in files)


def test_a_taken_name_is_never_replaced(tmp_path):
    from segbench.atomic import write_text_new

    first = write_text_new(tmp_path, "segbench-quick-cpu-20261126T101500Z", ".json", "1")
    second = write_text_new(tmp_path, "segbench-quick-cpu-20261126T101500Z", ".json", "2")
    assert (first.name, second.name) == (
        "segbench-quick-cpu-20261126T101500Z.json",
        "segbench-quick-cpu-20261126T101500Z-2.json",
    )
    assert (first.read_text(), second.read_text()) == ("1", "2")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])


def _disk_full_in(out: Path, monkeypatch) -> None:
    """Fault injection: writing a result into `out` fails with ENOSPC; other folders work."""
    real_write = pipeline.write_text_new

    def disk_full_in_out(folder, *args):
        if Path(folder) == out:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(folder, *args)

    monkeypatch.setattr(pipeline, "write_text_new", disk_full_in_out)


def test_a_failed_final_write_prints_the_tables_and_saves_the_result_elsewhere(
    small_dataset, tmp_path, monkeypatch
):
    """Fault injection: the disk under --out is full when the result is written."""
    out = tmp_path / "res"
    _disk_full_in(out, monkeypatch)
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(*fake().popitem())
    done = CliRunner().invoke(
        app, [*SMOKE, "--data", str(small_dataset), "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert done.exit_code == 1
    assert "time per step (median)" in done.output  # the tables were printed
    last = done.output.strip().splitlines()[-1]
    saved = sorted((tmp_path / "cache" / "unsaved-results").glob("segbench-smoke-cpu-*.json"))
    assert len(saved) == 1
    assert last == (
        f"error: --out {out}: cannot write the result (No space left on device); "
        f"the measurement was saved to {saved[0]}"
    )
    assert load_result(saved[0]).summary.steps == 4
    assert not any(out.glob("*.json"))


def test_a_tune_whose_disk_fills_keeps_every_trial_in_the_unsaved_folder(
    triangles_dir, tmp_path, monkeypatch
):
    """Fault injection: --out fills up while the trials run; the result lands elsewhere."""
    out = tmp_path / "res"
    _disk_full_in(out, monkeypatch)
    cache = cached_data(tmp_path, triangles_dir)
    monkeypatch.setenv("SEGBENCH_CACHE", str(cache))
    monkeypatch.setenv(*fake().popitem())
    done = CliRunner().invoke(
        app,
        [
            *("tune", "--preset", "smoke", "--backend", "tensorflow"),
            *("--precision", "float32", "--trials", "3", "--out", str(out)),
        ],
        env={"COLUMNS": "200"},
    )
    assert done.exit_code == 1, done.output
    (saved,) = (cache / "unsaved-results").glob("segbench-tune-smoke-*.json")
    assert done.output.strip().splitlines()[-1] == (
        f"error: --out {out}: cannot write the result (No space left on device); the tune "
        f"result was saved to {saved}"
    )
    tune = load_result(saved).tune
    assert len([t for t in tune.trials if t.images_per_s]) >= 3  # every trial that ran is kept
    assert not any(out.glob("*.json"))
    assert saved.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"  # its chart beside it


def test_an_out_without_room_for_the_result_is_refused_before_anything_runs(tmp_path, monkeypatch):
    """A file system with a few MB left (disk_usage reports it): refused at once, named."""
    import shutil as real_shutil

    usage = real_shutil.disk_usage(tmp_path)
    monkeypatch.setattr(out_folder.shutil, "disk_usage", lambda p: usage._replace(free=512 * 1024))
    monkeypatch.setenv(*fake().popitem())
    for command in (["run", "--preset", "quick"], ["tune", "--preset", "smoke"]):
        done = CliRunner().invoke(app, [*command, "--out", str(tmp_path / "res")])
        assert done.exit_code == 1, done.output
        line = done.output.strip().splitlines()[-1]
        assert line.startswith(f"error: --out {tmp_path / 'res'}: 0.5 MiB free, and this command ")
        assert line.endswith("free some space or choose another --out")
        assert not (tmp_path / "res").exists()


@pytest.mark.parametrize(
    ("sent", "code"),
    [(signal.SIGTERM, 143), (signal.SIGHUP, 129)],  # docker stop / CI; the terminal closed
)
def test_a_signal_during_timing_keeps_the_partial_result(small_dataset, tmp_path, sent, code):
    proc = start(
        *SMOKE,
        "--steps",
        "100000",
        "--data",
        str(small_dataset),
        "--out",
        "res",
        cwd=tmp_path,
        env=fake(sleep_s=0.02),
    )
    deadline = time.monotonic() + 240
    for line in proc.stderr:
        if "· timed" in line or time.monotonic() > deadline:
            break
    time.sleep(1.0)
    proc.send_signal(sent)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code
    files = list((tmp_path / "res").glob("*.json"))
    assert len(files) == 1
    result = load_result(files[0])
    assert (result.status, result.interrupted_by) == ("interrupted", sent.name)
    assert (
        err.strip().splitlines()[-1]
        == f"error: interrupted: the partial result is in res/{files[0].name}"
    )


def test_sigterm_during_data_generation_leaves_no_staging_folder(tmp_path):
    proc = start("data", "--out", str(tmp_path / "d"), cwd=tmp_path)
    # Signalled once the staging folder exists: generation takes about 3 s, so a fixed delay
    # could land after it on a fast machine.
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None, "no staging folder seen"
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert not (tmp_path / "d").exists()


def test_a_changed_cached_image_is_found_and_the_set_regenerated(triangles_dir, tmp_path):
    cached = tmp_path / "cache" / triangles.DATASET_VERSION
    shutil.copytree(triangles_dir, cached)
    shutil.copy(cached / "images" / "0002.png", cached / "images" / "0001.png")  # valid, wrong
    done = segbench(*SMOKE, "--out", "res", "--json", cwd=tmp_path, env=fake())
    assert done.returncode == 0, done.stderr
    assert f"the cached data set in {cached} is damaged" in done.stderr
    data = json.loads(done.stdout)["data"]
    assert data["sha256"] == triangles.TRIANGLES_SHA256
    # The data set's size, though a smoke run decodes only the 12 images it reads.
    assert (data["train_images"], data["validation_images"]) == (500, 100)
    original = (triangles_dir / "images" / "0001.png").read_bytes()
    assert (cached / "images" / "0001.png").read_bytes() == original


# ---------------------------------------------------------------- one line, not a traceback


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--seed", "-1"], "error: --seed must be between 0 and 4294967295"),
        (["--seed", str(2**32)], "error: --seed must be between 0 and 4294967295"),
        (["--width", "inf"], "error: --width: inf is not a finite number"),
        (["--width", "1e9"], "error: --width must be 0.001 to 4"),
        (["--cooldown", "inf"], "error: --cooldown: inf is not a finite number"),
        (["--cooldown", "1e9"], "error: --cooldown must be 0 to 86400 seconds"),
    ],
    ids=["seed-negative", "seed-large", "width-inf", "width-huge", "cooldown-inf", "cooldown-huge"],
)
def test_option_values_that_cannot_work_are_refused_in_one_line(tmp_path, args, line):
    done = CliRunner().invoke(app, [*SMOKE, *args, "--out", str(tmp_path / "res")])
    assert done.exit_code == 2
    assert done.output.strip().splitlines()[0].startswith(line)
    assert len(done.output.strip().splitlines()) == 1
    assert not (tmp_path / "res").exists()


def test_a_batch_too_large_for_memory_is_refused_by_the_memory_check(small_dataset, tmp_path):
    done = segbench(
        *SMOKE,
        "--batch-size",
        "100000",
        "--data",
        str(small_dataset),
        "--out",
        "res",
        cwd=tmp_path,
        env=fake(),
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("error: 1 environment check(s) failed (memory)")
    )
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("command", ["run", "doctor"])
def test_a_backend_that_is_not_installed_says_how_to_install_it(tmp_path, command):
    # torch is not part of the lock: the tests run without it.
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here")
    done = segbench(command, "--backend", "torch", cwd=tmp_path)
    assert done.returncode == 1
    assert error_lines(done.stderr) == [
        "error: --backend torch: torch is not installed here; install it "
        "(uv pip install torch, or pip install torch) or use --backend tensorflow"
    ]


def test_a_cache_that_is_a_file_is_named_in_run_and_doctor(tmp_path):
    blocker = tmp_path / "cache-file"
    blocker.write_text("not a folder")
    env = {"SEGBENCH_CACHE": str(blocker), **fake()}
    doctor = segbench("doctor", "--json", cwd=tmp_path, env=env)
    disk = next(c for c in json.loads(doctor.stdout)["checks"] if c["id"] == "disk")
    assert disk["status"] == "FAIL" and f"{blocker} is a file, not a folder" in disk["found"]
    forced = segbench(*SMOKE, "--force", "--out", "res", cwd=tmp_path, env=env)
    assert forced.returncode == 1
    assert forced.stderr.strip().splitlines()[-1] == (
        f"error: data cache {blocker}/{triangles.DATASET_VERSION}: cannot write ({blocker} is a "
        "file, not a folder); set SEGBENCH_CACHE to a writable folder"
    )
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize(
    ("command", "option", "what"),
    [
        (["run", "--preset", "smoke"], "--out", "folder"),
        (["tune", "--preset", "smoke"], "--out", "folder"),
        (["doctor"], "--out", "folder"),
        (["data"], "--out", "folder"),
        (["run"], "--data", "folder"),
        (["tune"], "--plot", "file"),
        (["compare", "a.json"], "--plot", "file"),
        (["plot", "a.json"], "-o", "file"),
    ],
)
def test_an_empty_path_is_named_not_taken_for_this_folder(tmp_path, command, option, what):
    done = segbench(*command, option, "", cwd=tmp_path, env=fake())
    assert done.returncode == 2
    named = "--output/-o" if option == "-o" else option
    hint = '("." for this one)' if what == "folder" else ""
    assert error_lines(done.stderr) == [
        f"error: {named}: empty; name a {what}{' ' + hint if hint else ''}; see segbench "
        f"{command[0]} --help"
    ]
    assert list(tmp_path.iterdir()) == []


def test_an_over_long_out_path_is_one_line(tmp_path):
    done = CliRunner().invoke(app, [*SMOKE, "--out", str(tmp_path / "new" / ("x" * 300))])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [
        "error: --out: the folder name 'xxxxxxxxxxxxxxxxxxxxxxxx'… is 300 bytes, and this file "
        "system allows 255 (NAME_MAX); choose a shorter --out"
    ]
    assert not (tmp_path / "new").exists()  # checked before any folder is made


@pytest.mark.parametrize("where", ["a-folder", "under-a-file"])
def test_a_plot_that_cannot_be_written_is_one_line_after_the_table(tmp_path, where):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    result = sorted((Path(__file__).parents[1] / "docs" / "results").glob("segbench-quick-*"))[0]
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    target = tmp_path / ("a-folder" if where == "a-folder" else "a-file/chart.png")
    done = CliRunner().invoke(app, ["compare", str(result), "--plot", str(target)])
    assert done.exit_code == 1
    assert "segbench compare" in done.output  # the table came first
    last = done.output.strip().splitlines()[-1]
    assert last.startswith(f"error: --plot {target}: cannot write the chart (")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _png_header_only(path, width, height):
    """A PNG that declares width × height pixels (the header is all a decoder reads first)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, body: (  # noqa: E731
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    )
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_without_decoding_it(small_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    _png_header_only(tmp_path / "bomb.png", 20000, 20000)
    csv = (data / "train.csv").read_text().splitlines()
    csv[1] = f"{tmp_path / 'bomb.png'},{csv[1].split(',')[1]}"
    (data / "train.csv").write_text("\n".join(csv) + "\n")
    done = segbench(*SMOKE, "--data", str(data), "--out", "res", cwd=tmp_path, env=fake())
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        f"error: --data: {tmp_path}/bomb.png: image too large to open safely; expected 512×512"
    ]


def test_a_csv_with_a_bom_and_a_trailing_blank_line_loads(small_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    text = (data / "train.csv").read_text()
    (data / "train.csv").write_text("\ufeff" + text + "\n\n", encoding="utf-8")
    split = triangles.load_split(data / "train.csv")
    assert len(split) == 8
    assert split.sha256 == triangles.load_split(small_dataset / "train.csv").sha256


def test_an_epoch_run_without_a_full_batch_is_refused_up_front(small_dataset, tmp_path):
    done = segbench(
        *SMOKE,
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--data",
        str(small_dataset),
        "--out",
        "res",
        cwd=tmp_path,
        env=fake(),
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --batch-size 16: larger than the 8 training images, so an epoch has no full "
        "batch to time; lower --batch-size"
    )
    assert not (tmp_path / "res").exists()


# ---------------------------------------------------------------- doctor's blind spot


def test_a_package_visible_twice_is_drift_naming_the_imported_one(tmp_path):
    shadow = tmp_path / "shadow"
    info = shadow / "rich-13.9.4.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rich\nVersion: 13.9.4\n")
    env = {"PYTHONPATH": str(shadow), **fake()}
    done = segbench("doctor", "--json", cwd=tmp_path, env=env)
    packages = next(c for c in json.loads(done.stdout)["checks"] if c["id"] == "packages")
    assert packages["status"] == "WARN"
    assert "visible twice: rich 13.9.4 (imported) over " in packages["found"]
    assert "remove the other copies" in packages["fix"]


QUICK_PAIR = ("20261126T112703Z", "20261130T045026Z")  # two committed quick results


@pytest.mark.parametrize("command", ["report", "plot", "compare"])
def test_a_report_or_chart_whose_disk_fills_is_saved_in_the_unsaved_folder(
    tmp_path, monkeypatch, command
):
    """Fault injection: the folder of --output is full (ENOSPC) when the page or the picture
    is written; it goes to the cache's unsaved-results folder, one line says where, exit 1."""
    import segbench.atomic
    import segbench.report.comparison_chart
    import segbench.report.trace

    full = tmp_path / "full"
    full.mkdir()
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))

    def refusing(real, at):  # the path is argument `at`
        def write(*args):
            if Path(args[at]).parent == full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(*args)

        return write

    monkeypatch.setattr(
        segbench.atomic, "write_text_atomic", refusing(segbench.atomic.write_text_atomic, 0)
    )
    monkeypatch.setattr(
        segbench.report.trace, "plot_trace", refusing(segbench.report.trace.plot_trace, 1)
    )
    monkeypatch.setattr(
        segbench.report.comparison_chart,
        "plot_comparison",
        refusing(segbench.report.comparison_chart.plot_comparison, 1),
    )
    source = Path(__file__).parents[1] / "docs/results/segbench-smoke-cpu-20261130T045811Z.json"
    name = "r.html" if command == "report" else "r.png"
    option, what = {"report": ("-o", "report"), "plot": ("-o", "picture")}.get(
        command, ("--plot", "chart")
    )
    args = [str(source)]
    if command == "compare":
        args = [str(source.with_name(f"segbench-quick-cpu-{t}.json")) for t in QUICK_PAIR]
    done = CliRunner().invoke(app, [command, *args, option, str(full / name)])
    assert done.exit_code == 1, done.output
    saved = tmp_path / "cache" / "unsaved-results" / name
    assert saved.stat().st_size > 1000
    assert list(full.iterdir()) == []  # nothing half-written where it failed
    shown = "--output" if option == "-o" else "--plot"
    assert done.output.strip().splitlines()[-1] == (
        f"error: {shown} {full / name}: cannot write the {what} (No space left on device); it "
        f"was saved to {saved} instead"
    )
