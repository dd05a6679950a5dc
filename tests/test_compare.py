"""`segbench compare`: speedups from constructed result files, formats, refusals."""

import csv
import json
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from segbench.cli import app
from segbench.report.export import compare_markdown
from segbench.results.compare import CompareError, compare
from segbench.results.result import SCHEMA_VERSION, Result, ResultFileError, load_result, recompute
from segbench.results.schema import to_json

GOLDEN = Path(__file__).parent / "golden" / "compare.md"


RESULTS = Path(__file__).parents[1] / "docs" / "results"
TEMPLATE = sorted(RESULTS.glob("segbench-quick-cpu-*.json"))[0]
ORDER_SEED = 7


def document(
    model="Test CPU",
    cores=8,
    median=1000.0,
    p10=900.0,
    p90=1200.0,
    batch=16,
    width=1.0,
    precision="float32",
    backend="tensorflow",
    tf="2.19.1",
    gpu=None,
    schema=1,
):
    """A complete result document as segbench run writes it (a committed one, values replaced)."""
    data = json.loads(TEMPLATE.read_text())
    data["schema_version"] = schema
    for check in data["doctor"]:  # no warning of its own (a loaded machine, here)
        if check["status"] == "WARN":
            check.update(status="PASS", fix="")
    data["config"].update(batch_size=batch, width=width, precision=precision, backend=backend)
    data["model"]["width"] = width
    data["device"] = {
        "kind": "gpu" if gpu else "cpu",
        "keras_name": "gpu" if gpu else "cpu",
        "description": gpu or "CPU",
    }
    data["environment"]["cpu"].update(model=model, logical_cores=cores)
    data["environment"]["keras_backend"] = backend
    packages = {"tensorflow": tf, "keras": "3.12.4", "torch": "2.11.0"}
    data["environment"]["packages"] = {k: v for k, v in packages.items() if v}
    # 20 timed steps whose p10, median and p90 are the values asked for, in a fixed mixed
    # order (no trend); the summary is what segbench computes from them. The middle 14 spread
    # between p10 and p90 as real steps do (were they all equal, the MAD would be 0 and every
    # other step an outlier), the two closest to the median symmetric about it.
    low, high = (0.9 * (median - p10), 0.9 * (p90 - median)) if p10 < median < p90 else (0, 0)
    near = min(low, high) / 7
    spread = [median - low * k / 7 for k in range(2, 8)] + [
        median + high * k / 7 for k in range(2, 8)
    ]
    ms = [p10] * 3 + [median - near, median + near, *spread] + [p90] * 3
    timed = [step for step in data["steps"] if step["phase"] == "timed"]
    assert len(timed) == len(ms)
    for step, value in zip(timed, np.random.default_rng(ORDER_SEED).permutation(ms), strict=True):
        step.update(ms=float(value), images=batch)
    data["config"]["batch_size"] = batch
    data["schema_version"] = min(schema, SCHEMA_VERSION)  # a newer one is read by nobody
    data["summary"] = to_json(recompute(Result.from_dict(data)).result.summary)
    data["schema_version"] = schema
    return data


def result(**values) -> Result:
    return Result.from_dict(document(**values))


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data.to_dict() if isinstance(data, Result) else data))
    return path


def test_speedup_of_two_measured_rows_has_a_ci_and_a_verdict():
    slow = result(median=1000.0, p10=900.0, p90=1200.0)
    fast = result(gpu="Test GPU", median=250.0, p10=240.0, p90=300.0)
    c = compare([slow, fast], references=False)
    base, gpu = c.rows
    assert base.speedup == (1.0, 1.0, 1.0) and base.verdict is None
    low, typical, high = gpu.speedup
    assert typical == pytest.approx(4.0)  # 1000 / 250
    assert gpu.speedup_ci95 == (low, high) and low <= 4.0 <= high
    assert gpu.verdict == "faster" and gpu.p_value < 1e-6
    assert gpu.images_per_s == pytest.approx(16 / 0.25)
    assert gpu.seconds_per_100k == pytest.approx(250 / 16 * 100)


def test_speedup_against_a_published_range_spans_both_spreads():
    c = compare([result(median=1000.0, p10=900.0, p90=1200.0)], baseline="Apple M1 GPU")
    cpu = c.rows[0]
    low, typical, high = cpu.speedup
    assert typical == pytest.approx(328 / 62.5)  # the M1's 328 ms/image over 1000/16
    # No samples behind a published figure: the baseline's value over this row's p90 and p10.
    assert (low, high) == (pytest.approx(328 / (1200 / 16)), pytest.approx(328 / (900 / 16)))
    assert cpu.speedup_ci95 is None and cpu.verdict is None


def test_baseline_by_number_or_label_and_references():
    rows = compare(
        [result(median=1000.0), result(gpu="Test GPU", median=250.0, p10=240.0, p90=300.0)],
        baseline="Test GPU",
    )
    assert rows.baseline == 1
    assert rows.rows[0].speedup[1] == pytest.approx(0.25)
    m1 = next(r for r in rows.rows if r.label.startswith("Apple M1 GPU"))
    assert m1.kind == "published"
    # The M1's 328 ms/image against the GPU's 250/16 = 15.625 ms/image.
    assert m1.speedup[1] == pytest.approx(15.625 / 328)
    by_number = compare(
        [result(median=1000.0), result(gpu="Test GPU", median=250.0, p10=240.0, p90=300.0)],
        baseline="2",
    )
    assert by_number.baseline == 1
    with pytest.raises(CompareError, match="--baseline 9: choose 1 to 5"):
        compare([result()], baseline="9")
    # Two published M1 rows (GPU and CPU): the message names them and says to use a number.
    with pytest.raises(CompareError) as several:
        compare([result()], baseline="apple m1")
    m1_rows = [i for i, r in enumerate(compare([result()]).rows, 1) if "Apple M1" in r.label]
    assert len(m1_rows) >= 2 and str(several.value) == (
        f"--baseline 'apple m1': rows {', '.join(map(str, m1_rows))} match; give the row's "
        f"number instead (--baseline {m1_rows[0]})"
    )


def test_single_file_is_compared_with_the_published_references():
    c = compare([result(median=16 * 32.8)])  # 32.8 ms/image: the slow end of the Quadro range
    labels = [r.label for r in c.rows]
    assert labels == [
        "CPU: Test CPU × 8",
        "Apple M1 GPU (8-core)",
        "Apple M1 CPU",
        "NVIDIA Quadro RTX 6000",
        "Apple M1 Max GPU (32-core)",
    ]
    assert c.rows[1].speedup[1] == pytest.approx(32.8 / 328)
    assert c.rows[4].kind == "estimate"


def test_differing_model_or_batch_is_refused_unless_forced():
    with pytest.raises(CompareError) as err:
        compare([result(), result(width=0.5, batch=8)])
    assert str(err.value) == (
        "results differ in width (0.5 vs 1.0), batch_size (16 vs 8): not comparable "
        "(--force compares anyway)"
    )
    forced = compare([result(), result(width=0.5, batch=8)], force=True)
    assert forced.forced_fields == ["width", "batch_size"]
    assert "Forced: results differ in width, batch_size." in forced.warnings
    # The same machine twice: each row says which setting it is, so --baseline can pick one.
    device = forced.rows[0].label.split(" · ")[0]
    assert [r.label for r in forced.rows[:2]] == [
        f"{device} · width 1, batch 16",
        f"{device} · width 0.5, batch 8",
    ]
    rebased = compare([result(), result(width=0.5, batch=8)], force=True, baseline="width 0.5")
    assert rebased.baseline == 1
    # A whole part of a label wins over a substring of another ("width 0.1" of "width 0.125");
    # widths that differ past 6 digits are told apart.
    three = [result(width=0.1), result(width=0.125), result(width=0.10000001)]
    labels = [r.label.split(" · ")[1] for r in compare(three, force=True).rows[:3]]
    assert labels == ["width 0.1", "width 0.125", "width 0.10000001"]
    assert compare(three, force=True, baseline="width 0.1").baseline == 0
    assert compare(three, force=True, baseline="width 0.125").baseline == 1
    with pytest.raises(CompareError, match=r"rows 1, 2, 3 match; give the row's number"):
        compare(three, force=True, baseline="width 0")


def _distributed(batch: int, replicas: int) -> Result:
    data = document(batch=batch, schema=4)
    data["config"]["strategy"] = "mirrored"
    data["distribution"] = {
        "strategy": "mirrored",
        "replicas": replicas,
        "workers": 1,
        "per_replica_batch": batch // replicas,
        "global_batch": batch,
        "scaling": "weak",
        "communication": "NcclAllReduce",
        "batchnorm": "per-replica",
        "devices": [f"GPU:{i}" for i in range(replicas)],
    }
    return Result.from_dict(data)


def test_a_distributed_result_sits_beside_one_device_only_at_the_same_global_batch():
    with pytest.raises(CompareError, match=r"batch_size \(16 vs 64\): not comparable"):
        compare([result(batch=16), _distributed(64, 4)])
    c = compare([result(batch=64), _distributed(64, 4)], references=False)
    assert "replicas" in c.warnings[0] and c.rows[1].conditions.endswith("4 replicas (mirrored)")
    forced = compare([result(batch=16), _distributed(64, 4)], force=True, references=False)
    assert len(forced.rows) == 2


def test_differing_versions_precision_or_backend_only_warn():
    c = compare(
        [result(), result(precision="mixed_bfloat16", backend="torch", tf=None)], references=False
    )
    assert c.warnings == [
        "Results differ in tensorflow, precision, backend: comparable work, but not like for like."
    ]


def test_markdown_matches_golden_file():
    c = compare(
        [
            result(model="AMD EPYC", cores=2, median=13946.2, p10=13693.9, p90=14219.9),
            result(
                gpu="NVIDIA H100 80GB HBM3",
                median=115.6,
                p10=115.0,
                p90=119.1,
                backend="torch",
                tf=None,
            ),
        ]
    )
    assert compare_markdown(c) == GOLDEN.read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"schema_version": 1, "config": {',
            "not valid JSON (truncated at line 1, column 34: Expecting property name enclosed in "
            "double quotes)",
        ),
        ("[1, 2, 3]", "not a segbench result (no schema_version)"),
        ('{"hello": "world"}', "not a segbench result (no schema_version)"),
        (
            json.dumps(document(schema=99)),
            "schema_version 99 is newer than this segbench reads (5); upgrade segbench",
        ),
    ],
    ids=["truncated", "list", "foreign", "newer"],
)
def test_bad_file_exits_2_naming_it_and_prints_no_table(tmp_path, content, message):
    good = write(tmp_path, "good.json", result())
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    done = CliRunner().invoke(app, ["compare", str(good), str(bad)])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [f"error: {bad}: {message}"]


def test_load_result_rejects_a_run_without_timed_steps(tmp_path):
    data = document()
    data["summary"] = {"steps": 0, "compile_ms": [25200.0], "warmup_ms": []}
    with pytest.raises(ResultFileError, match="holds no timed step"):
        load_result(write(tmp_path, "r.json", data))


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_every_format_lists_every_row(tmp_path, fmt):
    files = [
        write(tmp_path, "a.json", result()),
        write(tmp_path, "b.json", result(gpu="Test GPU", median=250.0, p10=240.0, p90=300.0)),
    ]
    done = CliRunner().invoke(
        app,
        ["compare", *map(str, files), "--format", fmt, "--no-references"],
        env={"COLUMNS": "200"},
    )
    assert done.exit_code == 0, done.output
    if fmt == "json":
        rows = json.loads(done.output)["rows"]
        assert [r["speedup"][1] for r in rows] == [1.0, 4.0]
    elif fmt == "csv":
        rows = list(csv.DictReader(done.output.splitlines()))
        assert [r["device"] for r in rows] == ["CPU: Test CPU × 8", "Test GPU"]
        assert [float(r["speedup"]) for r in rows] == [1.0, 4.0]
    else:
        assert "CPU: Test CPU × 8" in done.output and "Test GPU" in done.output
        assert "4.00×" in done.output


def test_plot_is_a_valid_png(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    files = [
        write(tmp_path, "a.json", result()),
        write(tmp_path, "b.json", result(gpu="Test GPU", median=250.0, p10=240.0, p90=300.0)),
    ]
    out = tmp_path / "plots" / "compare.png"
    done = CliRunner().invoke(app, ["compare", *map(str, files), "--plot", str(out)])
    assert done.exit_code == 0, done.output
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 600 and height > 400
    # Every chunk's CRC holds and the image data inflates: a complete, valid PNG.
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(
            kind + body
        )
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    assert kind == b"IEND" and len(zlib.decompress(idat)) > 0


def test_plot_error_bars_are_the_ci_of_measured_rows_and_the_published_range():
    from segbench.report.comparison_chart import error_interval

    c = compare([result(median=1000.0, p10=900.0, p90=1200.0)])
    measured, m1, _, quadro = c.rows[:4]
    assert error_interval(measured) == measured.ms_per_image_ci95
    low, high = measured.ms_per_image_ci95
    assert low <= 1000.0 / 16 <= high and (low, high) != measured.ms_per_image_range
    assert error_interval(m1) == (328.0, 328.0)
    assert error_interval(quadro) == (16.4, 32.8)


def test_committed_example_results_compare():
    files = [
        RESULTS / "segbench-quick-cpu-20261126T112703Z.json",
        *sorted(RESULTS.glob("segbench-quick-gpu-*.json")),
    ]
    assert len(files) == 3
    results = [load_result(f) for f in files]
    c = compare(results)
    cpu, h100, h100_bf16 = c.rows[:3]
    assert cpu.label.startswith("CPU: ") and h100.label == "NVIDIA H100 80GB HBM3"
    expected = results[0].summary.median_ms / results[1].summary.median_ms
    assert h100.speedup[1] == pytest.approx(expected, rel=1e-9)
    assert h100_bf16.precision == "mixed_bfloat16"


def with_telemetry(data, throttled_steps=0, j_per_image=3.75):
    """A result document with the telemetry block an NVML run writes (values as measured on
    an H100: 700 W cap), its trace spanning the steps."""
    timed = [s for s in data["steps"] if s["phase"] == "timed"]
    clock = 0.0
    for step in data["steps"]:
        step["at_s"] = clock
        clock += step["ms"] / 1000 + 0.001
    times = [i * 0.1 for i in range(int(clock / 0.1) + 1)]
    data["schema_version"] = 3
    data["telemetry"] = {
        "source": "nvml",
        "available": True,
        "interval_s": 0.1,
        "samples": len(times),
        "energy_j": j_per_image * 16 * len(timed),
        "mean_w": 650.0,
        "peak_w": 700.0,
        "j_per_image": j_per_image,
        "images_per_kj": 1000 / j_per_image,
        "clocks_mhz": {"min": 1755.0, "median": 1980.0, "max": 1980.0},
        "temperature_c_max": 71.0,
        "throttle": {
            "events": 1 if throttled_steps else 0,
            "fraction_of_timed_steps": throttled_steps / len(timed),
            "reasons": ["power cap"] if throttled_steps else [],
        },
        "trace": {
            "t_s": times,
            "power_w": [None] + [650.0 + (i % 7) for i in range(1, len(times))],
            "clock_mhz": [1980.0 - 10 * (i % 3) for i in range(len(times))],
            "temperature_c": [60 + i * 10 / len(times) for i in range(len(times))],
        },
    }
    return data


def test_energy_columns_appear_only_when_a_row_has_energy():
    plain = compare([result(), result(gpu="Test GPU", median=250.0)], references=False)
    assert "J/image" not in compare_markdown(plain)
    gpu = Result.from_dict(with_telemetry(document(gpu="Test GPU", median=250.0)))
    mixed = compare([result(), gpu], references=False)
    cpu_row, gpu_row = mixed.rows
    assert (gpu_row.j_per_image, gpu_row.images_per_kj) == (3.75, pytest.approx(266.67, 1e-3))
    assert cpu_row.j_per_image is None
    header, _, cpu_line, gpu_line = compare_markdown(mixed).splitlines()[:4]
    assert "| J/image | images/kJ |" in header
    assert "| — | — |" in cpu_line and "| 3.75 | 267 |" in gpu_line


def test_throttling_is_a_warning_in_run_and_compare(tmp_path):
    from segbench.results.caveats import run_caveats

    throttled = Result.from_dict(with_telemetry(document(gpu="Test GPU"), throttled_steps=5))
    [note] = [n for n in run_caveats(throttled) if "throttled" in n]
    assert note.startswith("The device throttled during 25 % of the timed steps (power cap)")
    path = write(tmp_path, "hot.json", throttled)
    done = CliRunner().invoke(app, ["compare", str(path), "--no-references"])
    assert done.exit_code == 0, done.output
    # The warning names the file (rich may fold the long path: compare without whitespace).
    assert f"{path}:Thedevicethrottledduring25%" in "".join(done.output.split())
    cool = Result.from_dict(with_telemetry(document(gpu="Test GPU")))
    assert not [n for n in run_caveats(cool) if "throttled" in n]


def test_run_report_shows_energy_clocks_and_the_ceilings():
    from rich.console import Console

    from segbench.measure.peak import peak
    from segbench.measure.vendor_peaks import nvidia_peak
    from segbench.report.tables import run_report

    r = Result.from_dict(with_telemetry(document(gpu="NVIDIA H100 80GB HBM3", median=250.0)))
    r = replace(
        r,
        peak=peak(
            r.summary.tflops,
            "float32",
            (200.0, "matmul 8192×8192"),
            nvidia_peak(r.device.description),
            [],
        ),
    )
    console = Console(record=True, width=200)
    console.print(run_report(r, None, []))
    text = console.export_text()
    assert "energy per image" in text and "3.75 J" in text and "267 images/kJ" in text
    assert "1980 MHz" in text and "71 °C" in text
    assert f"{100 * r.summary.tflops / 200:.1f} %" in text
    assert "494.7 TFLOP/s TF32 (published): H100 SXM" in text.replace(
        "495 TFLOP/s", "494.7 TFLOP/s"
    )


def test_trace_plot_draws_old_and_new_files(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    new = write(tmp_path, "new.json", with_telemetry(document(gpu="Test GPU"), throttled_steps=2))
    old = write(tmp_path, "old.json", document(schema=2))  # no step start times, no telemetry
    for path in (new, old):
        out = tmp_path / f"{path.stem}.png"
        done = CliRunner().invoke(app, ["plot", str(path), "-o", str(out)])
        assert done.exit_code == 0, done.output
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert (width, height) == ((1320, 780) if path == new else (1320, 576))
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 3')
    done = CliRunner().invoke(app, ["plot", str(broken), "-o", str(tmp_path / "x.png")])
    assert done.exit_code == 2 and "not valid JSON" in done.output
    assert not (tmp_path / "x.png").exists()


def test_a_run_whose_numerics_deviate_is_marked_in_run_and_compare(tmp_path):
    from segbench.results.caveats import run_caveats

    data = document(gpu="Test GPU")
    data["schema_version"] = 3
    data["numerics"] = {
        "status": "deviates",
        "max_rel_diff": 0.031,
        "at_step": 1,
        "tolerance": 1e-3,
        "reference": "numerics_reference.json",
        "losses": [1.52, 1.49, 1.47, 1.45],
    }
    wrong = Result.from_dict(data)
    [first, *_] = run_caveats(wrong)
    assert first.startswith(
        "The numerics check deviates from the CPU float32 reference from step 1 on (relative "
        "difference 0.031, tolerance 0.001): the speed figure may come from a wrong computation"
    )
    c = compare([result(), wrong], references=False)
    assert c.rows[1].caveats == ["numerics deviate"]
    assert c.rows[1].conditions == "quick, TensorFlow 2.19.1, Keras 3.12.4"
    assert c.rows[1].undermined_by == ["#2 numerics deviate"]
    assert any(w.startswith("Test GPU: The numerics check deviates") for w in c.warnings)
    data["numerics"] = {**data["numerics"], "status": "match", "max_rel_diff": 2e-7}
    assert not [n for n in run_caveats(Result.from_dict(data)) if "numerics" in n]


def test_outlier_bounds_never_show_a_negative_step_time():
    from segbench.results.caveats import outlier_bounds

    assert outlier_bounds(8968.46, 25210.12, 1) == "beyond 8968.5 … 25210.1 ms"
    # A wide spread: median - 5 MAD-σ is below zero, so only slow steps can be outliers.
    assert outlier_bounds(-120.0, 480.0, 0) == "above 480 ms"
