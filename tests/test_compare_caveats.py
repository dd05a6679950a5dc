"""What a result file says about itself reaches `segbench compare`: a diverged loss, drift, power,
throttling, outliers, interrupted, forced and numerics caveats beside the verdict, the environment
differences between the files; and a result names no user, host or home folder.

The files are a committed result (docs/results) edited as a user's run would have come out, and
compare is the real command line (`python -m segbench compare`)."""

import csv
import json
import math
import re
import socket
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from cli_helpers import segbench
from typer.testing import CliRunner

from segbench.cli import app
from segbench.doctor.hardware import check_disk
from segbench.doctor.types import PASS, Check
from segbench.measure.numerics import Numerics
from segbench.measure.run.runner import Measurement
from segbench.results.result import Result, build_result, load_result, recompute, write_result
from segbench.results.schema import to_json

REAL = Path(__file__).parents[1] / "docs" / "results" / "segbench-quick-cpu-20261126T162833Z.json"


def real() -> dict:
    """A committed result with no caveat of its own (steady, no outliers, mains power; its
    machine's load, which doctor warned of, taken as passed: test_recorded_warnings… has it)."""
    data = json.loads(REAL.read_text())
    for check in data["doctor"]:
        if check["id"] == "load":
            check.update(status="PASS", fix="")
    return data


def timed(data: dict) -> list[dict]:
    return [s for s in data["steps"] if s["phase"] == "timed"]


def write(tmp_path: Path, name: str, data: dict) -> Path:
    """The edited document as a run would have written it: its summary made from its steps."""
    data["summary"] = to_json(recompute(Result.from_dict(data)).result.summary)
    path = tmp_path / name
    path.write_text(json.dumps(data, allow_nan=True))
    return path


def table_rows(text: str, title: str) -> list[list[str]]:
    """The rows of the rich table under `title`, each cell's folded lines joined by spaces."""
    rows: list[list[list[str]]] = []
    for line in text[text.index(title) :].splitlines()[1:]:
        if not line.startswith("│"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells[0] or not rows:
            rows.append([[c] for c in cells])
        else:
            for parts, cell in zip(rows[-1], cells, strict=True):
                parts.append(cell)
    return [[" ".join(p for p in parts if p) for parts in row] for row in rows]


# 6. A diverged run looks like a fast run.


def diverged() -> dict:
    """The run twice as fast, its loss NaN from the 15th timed step on: what a broken
    computation (an overflow in mixed precision, a faulty driver) looks like."""
    data = real()
    for i, step in enumerate(timed(data)):
        step["ms"] /= 2
        if i >= 14:
            step["loss"] = math.nan
    return data


def test_a_diverged_run_gets_no_verdict_and_fails_the_gate(tmp_path):
    good = write(tmp_path, "good.json", real())
    bad = write(tmp_path, "bad.json", diverged())
    on_disk = sorted(p.name for p in tmp_path.iterdir())

    done = CliRunner().invoke(
        app, ["compare", str(good), str(bad), "--no-references", "--format", "json"]
    )
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    base, row = document["rows"]
    assert base["caveats"] == [] and base["verdict"] is None and base["baseline"]
    assert row["caveats"] == ["diverged (NaN loss)"]
    # Twice as fast, and said so before: now no verdict and no p-value.
    assert row["speedup"][1] > 1.9
    assert (row["verdict"], row["p_value"], row["no_verdict"]) == (None, None, "loss diverged")
    assert (
        f"{bad}: The loss became NaN in 6 of 20 timed steps (the first: timed step 15): "
        "the run diverged, so its step times measure a broken computation and no verdict is "
        "given for it."
    ) in " ".join(document["warnings"])

    # The regression gate cannot call it a pass: exit 3, the reason named, no "ok".
    gate = segbench(
        "compare",
        str(good),
        str(bad),
        "--no-references",
        "--wide",
        "--fail-if-slower",
        "5",
        cwd=tmp_path,
        env={"COLUMNS": "400"},
    )
    assert gate.returncode == 3
    rows = table_rows(gate.stdout, "segbench compare")
    assert [row[-2:] for row in rows] == [
        ["baseline", "—"],
        ["no verdict: loss diverged", "diverged (NaN loss)"],
    ]
    assert gate.stderr.strip().splitlines() == [
        f"error: {bad}: no verdict against {good} (loss diverged: a NaN or inf loss in the timed "
        "steps), so the gate cannot pass; find why the loss diverged and measure again"
    ]
    assert "ok:" not in gate.stdout + gate.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == on_disk  # compare writes nothing


def test_a_diverged_baseline_leaves_every_row_without_verdict(tmp_path):
    bad = write(tmp_path, "bad.json", diverged())
    good = write(tmp_path, "good.json", real())
    done = CliRunner().invoke(
        app,
        [
            "compare",
            str(bad),
            str(good),
            "--no-references",
            "--format",
            "json",
            "--fail-if-slower",
            "5",
        ],
    )
    assert done.exit_code == 3
    row = json.loads(done.stdout)["rows"][1]
    assert (row["caveats"], row["verdict"]) == ([], None)
    assert row["no_verdict"] == "the baseline's loss diverged"
    assert f"error: {good}: no verdict against {bad} (the baseline's loss diverged" in " ".join(
        done.stderr.split()
    )


# 12. compare ignores what each file says about itself.


def slowed_on_battery() -> dict:
    """30 % slower and slowing down step by step, on battery in Low Power Mode, throttled,
    made with other versions of segbench, TensorFlow, Keras and the lock file."""
    data = real()
    for i, step in enumerate(timed(data)):
        step["ms"] *= 1.3 * (1 + 0.03 * i)
    data["telemetry"].update(
        power_source="battery (54 %)",
        low_power_mode=True,
        throttle={"events": 2, "fraction_of_timed_steps": 0.3, "reasons": ["thermal"]},
    )
    data["doctor"] = [
        {**c, "status": "WARN", "found": "on battery (54 %)"} if c["id"] == "power" else c
        for c in data["doctor"]
    ]
    data["segbench_version"] = "0.2.0"
    data["git_commit"] = "0123456789abcdef0123456789abcdef01234567-dirty"
    data["environment"]["uv_lock_sha256"] = "ab" * 32
    data["environment"]["packages"].update(tensorflow="2.20.0", keras="3.13.1")
    data["environment"]["gpu_stack"]["cuda_version"] = "12.8.0"
    return data


def interrupted_with_outliers() -> dict:
    """Interrupted, forced past a failed check, numerics deviating, 3 steps 5× the median."""
    data = real()
    for i in (3, 9, 15):
        timed(data)[i]["ms"] *= 5
    data.update(status="interrupted", interrupted_by="SIGINT", forced=True)
    data["numerics"] = {
        "status": "deviates",
        "max_rel_diff": 0.031,
        "at_step": 1,
        "tolerance": 1e-3,
        "reference": "numerics_reference.json",
        "losses": [1.52, 1.49, 1.47, 1.45],
    }
    return data


def test_each_row_carries_its_caveats_and_the_verdict_says_what_undermines_it(
    tmp_path, monkeypatch
):
    files = [
        write(tmp_path, "main.json", real()),
        write(tmp_path, "battery.json", slowed_on_battery()),
        write(tmp_path, "interrupted.json", interrupted_with_outliers()),
    ]
    args = ["compare", *map(str, files), "--no-references"]
    done = segbench(*args, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    main, battery, interrupted = document["rows"]

    assert main["caveats"] == [] and main["undermined_by"] == []
    [drift] = [c for c in battery["caveats"] if c.startswith("drift")]
    assert float(re.fullmatch(r"drift \+(\d+\.\d) %", drift).group(1)) > 40
    versions = [
        "tensorflow 2.20.0 (baseline 2.19.1)",
        "keras 3.13.1 (baseline 3.12.4)",
    ]  # the software differs from the baseline's too
    assert battery["caveats"] == [drift, "throttled 30 %", "battery", "low power", *versions]
    assert battery["verdict"] == "slower" and battery["p_value"] < 1e-4
    assert battery["undermined_by"] == [
        f"#2 {drift}, throttled 30 %, battery, low power, {', '.join(versions)}"
    ]
    assert interrupted["caveats"] == [
        "numerics deviate",
        "interrupted",
        "forced",
        "outliers 3/20",
    ]
    assert interrupted["undermined_by"] == [
        "#3 numerics deviate, interrupted, forced, outliers 3/20"
    ]

    # Every recorded fact that differs, one value per file in row order.
    assert document["environment_differences"] == [
        {"fact": "segbench", "values": ["0.1.0", "0.2.0", "0.1.0"]},
        {
            "fact": "git commit",
            "values": [
                "047572ee957e4714cf9091c439f8acbbc54e01ee",
                "0123456789abcdef0123456789abcdef01234567-dirty",
                "047572ee957e4714cf9091c439f8acbbc54e01ee",
            ],
        },
        {
            "fact": "uv.lock sha256",
            "values": [
                "0014dae71a3796a48350c4492a666cf62f7dbce2150cede2e968f7853ee182bb",
                "ab" * 32,
                "0014dae71a3796a48350c4492a666cf62f7dbce2150cede2e968f7853ee182bb",
            ],
        },
        {"fact": "power", "values": ["mains", "battery, Low Power Mode", "mains"]},
        {"fact": "keras", "values": ["3.12.4", "3.13.1", "3.12.4"]},
        {"fact": "tensorflow", "values": ["2.19.1", "2.20.0", "2.19.1"]},
        {"fact": "cuda version", "values": ["12.5.1", "12.8.0", "12.5.1"]},
    ]
    warnings = " ".join(document["warnings"])
    assert f"{files[1]}: Steps slowed down by" in warnings
    assert f"{files[1]}: The run was made on battery power in Low Power Mode" in warnings
    assert f"{files[2]}: The run was interrupted" in warnings

    # The table: the verdict with its qualifier, the caveats column, then the differences.
    from segbench.cli.console import stdout

    monkeypatch.setattr(stdout, "width", 400)  # the console is made once per process
    table = CliRunner().invoke(app, [*args, "--wide"], env={"COLUMNS": "400"})
    assert table.exit_code == 0, table.output
    rows = table_rows(table.stdout, "segbench compare")
    assert [row[-2:] for row in rows] == [
        ["baseline", "—"],
        [
            f"slower (p = {battery['p_value']:.2g}) — undermined: #2 {drift}, throttled 30 %, "
            f"battery, low power, {', '.join(versions)}",
            f"{drift}, throttled 30 %, battery, low power, {', '.join(versions)}",
        ],
        [
            f"no significant difference (p = {interrupted['p_value']:.2g}) — undermined: "
            "#3 numerics deviate, interrupted, forced, outliers 3/20",
            "numerics deviate, interrupted, forced, outliers 3/20",
        ],
    ]
    assert table_rows(table.stdout, "environment differences") == [
        ["segbench", "0.1.0", "0.2.0", "0.1.0"],
        ["git commit", "047572ee957e", "0123456789ab-dirty", "047572ee957e"],
        ["uv.lock sha256", "0014dae71a37", "abababababab", "0014dae71a37"],
        ["power", "mains", "battery, Low Power Mode", "mains"],
        ["keras", "3.12.4", "3.13.1", "3.12.4"],
        ["tensorflow", "2.19.1", "2.20.0", "2.19.1"],
        ["cuda version", "12.5.1", "12.8.0", "12.5.1"],
    ]


def test_markdown_and_csv_carry_the_caveats_and_the_differences(tmp_path):
    files = [
        str(write(tmp_path, "main.json", real())),
        str(write(tmp_path, "battery.json", slowed_on_battery())),
    ]
    markdown = CliRunner().invoke(
        app, ["compare", *files, "--no-references", "--format", "markdown"]
    )
    assert markdown.exit_code == 0, markdown.output
    lines = markdown.stdout.splitlines()
    assert lines[0].endswith("| speedup (95 % CI or range) | verdict | caveats |")
    assert lines[2].endswith("| 1.00× (baseline) | baseline | — |")
    assert re.search(
        r"\| slower \(p = [0-9.e-]+\) — undermined: #2 drift \+\d+\.\d %, throttled 30 %, "
        r"battery, low power, tensorflow 2\.20\.0 \(baseline 2\.19\.1\), keras 3\.13\.1 "
        r"\(baseline 3\.12\.4\) \| drift \+\d+\.\d %, throttled 30 %, battery, low power, "
        r"tensorflow 2\.20\.0 \(baseline 2\.19\.1\), keras 3\.13\.1 \(baseline 3\.12\.4\) \|$",
        lines[3],
    )
    start = lines.index("**environment differences**")
    assert lines[start + 2 : start + 5] == [
        "| fact | #1 | #2 |",
        "|---|---|---|",
        "| segbench | 0.1.0 | 0.2.0 |",
    ]
    assert "| tensorflow | 2.19.1 | 2.20.0 |" in lines
    done = CliRunner().invoke(app, ["compare", *files, "--no-references", "--format", "csv"])
    first, second = csv.DictReader(done.stdout.splitlines())
    assert list(first)[-2:] == ["conditions", "caveats"]
    assert (first["verdict"], first["conditions"], first["caveats"]) == (
        "baseline",
        "quick, TensorFlow 2.19.1, Keras 3.12.4",
        "",
    )
    assert second["caveats"].startswith("drift +")
    assert second["caveats"].endswith(
        "%; throttled 30 %; battery; low power; tensorflow 2.20.0 (baseline 2.19.1); "
        "keras 3.13.1 (baseline 3.12.4)"
    )
    assert second["undermined_by"].startswith("#2 drift +")


# 13. Result files hold absolute paths with the user's home folder.


def test_a_result_names_no_user_host_or_home_folder(tmp_path, monkeypatch):
    home = tmp_path / "home" / "adalovelace"
    monkeypatch.setenv("HOME", str(home))
    for name in ("USER", "LOGNAME"):
        monkeypatch.setenv(name, "adalovelace")
    # A distinctive host name: the real one may be a short word found in any text ("vm").
    host = "ada-laptop.example.org"
    monkeypatch.setattr(socket, "gethostname", lambda: host)

    assert check_disk({str(home / "data"): int(5e9)}).found == "~/data: 5.0 GB free"
    template = load_result(REAL)
    measurement = Measurement(
        config=template.config,
        device=template.device,
        parameters=template.model.parameters,
        training_flops_per_image=template.model.training_gflop_per_image * 1e9,
        steps=template.steps,
        epochs=template.epochs,
        stage_s=template.stage_s,
    )
    checks = [
        check_disk({str(home / ".cache" / "segbench"): int(8e10), "/tmp/out": int(8e10)}),
        Check("distribution", PASS, f"multiworker: {host}:2222, ada-laptop:2223"),
        Check("cache", PASS, "/scratch/adalovelace/segbench", fix=f"see {home}/README"),
    ]
    result = build_result(
        measurement,
        template.environment,
        datetime.now(timezone.utc),
        replace(template.data, folder=str(home / "segbench-data")),
        git_commit=template.git_commit,
        doctor=checks,
        numerics=Numerics(status="skipped", reason=f"OSError: {home}/.venv/lib/libtf.so"),
    )
    written = write_result(result, tmp_path / "results")
    text = written.read_text()
    assert "adalovelace" not in text and str(home) not in text
    assert host not in text and "ada-laptop" not in text
    saved = json.loads(text)
    assert saved["data"]["folder"] == "~/segbench-data"
    assert [(c["found"], c["fix"]) for c in saved["doctor"]] == [
        ("~/.cache/segbench: 80.0 GB free, /tmp/out: 80.0 GB free", ""),
        ("multiworker: <host>:2222, <host>:2223", ""),
        ("/scratch/<user>/segbench", "see ~/README"),
    ]
    assert saved["numerics"]["reason"] == "OSError: ~/.venv/lib/libtf.so"

    # The written file is a result like any other: compare reads it as it is.
    done = segbench("compare", str(written), "--no-references", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"][0]["source"] == str(written)


def test_recorded_warnings_are_caveats_of_their_row_where_they_concern_its_device():
    """A busy machine and a CPU clock held low undermine a row as battery power does; a CPU
    run is not undermined by an NVIDIA driver it never used, a GPU run is."""
    from segbench.results.compare import compare

    def warned(data: dict, **found: str) -> dict:
        data["doctor"] = [c for c in data["doctor"] if c["id"] not in found]
        data["doctor"] += [
            {"id": i, "status": "WARN", "found": f, "expected": "", "fix": f"fix {i}"}
            for i, f in found.items()
        ]
        return data

    busy = warned(
        real(),
        load="1-minute load 4.20 on 2 CPUs",
        **{"cpu-clock": "800 MHz of 3.50 GHz (powersave): the clock is held low"},
        nvidia="nvidia-smi: Failed to initialize NVML: Unknown Error",
    )
    on_gpu = warned(real(), nvidia="Driver/library version mismatch")
    on_gpu["device"] = {"kind": "gpu", "keras_name": "gpu", "description": "Test GPU"}
    rows = compare(
        [Result.from_dict(real()), Result.from_dict(busy), Result.from_dict(on_gpu)],
        force=True,
        references=False,
    )
    main, cpu, gpu = rows.rows
    assert main.caveats == []
    assert cpu.caveats == ["load WARN", "cpu-clock WARN"]  # not the driver the CPU run never used
    assert "nvidia WARN" in gpu.caveats
    assert cpu.undermined_by == ["#2 load WARN, cpu-clock WARN"]
    said = [w for w in rows.warnings if "Doctor warned" in w]
    assert any(
        w.endswith(
            "Doctor warned before the run (load: 1-minute load 4.20 on 2 CPUs): the figures may "
            "not show what the machine can do; fix load, and run again."
        )
        for w in said
    )
    assert not any("NVML" in w for w in said) and any("version mismatch" in w for w in said)
