"""Doctor checks judged on supplied facts, then a real `segbench doctor --json` on this machine."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from segbench import doctor
from segbench.doctor import FAIL, PASS, SKIP, WARN

ROOT = Path(__file__).resolve().parents[1]
PINS = {"tensorflow": "2.19.1", "keras": "3.12.4", "numpy": "2.1.3", "tensorflow-metal": "1.2.0"}
H100 = {
    "name": "NVIDIA H100 80GB HBM3",
    "driver_version": "580.159.04",
    "compute_cap": "9.0",
    "memory_total_mib": "81559",
    "memory_free_mib": "80000",
}


def test_python_range():
    assert doctor.check_python((3, 11, 7)).status == PASS
    assert doctor.check_python((3, 10, 0)).status == PASS
    old = doctor.check_python((3, 9, 18))
    assert old.status == FAIL and old.found == "3.9.18" and "uv python install" in old.fix
    assert doctor.check_python((3, 13, 0)).status == FAIL


def test_framework_versions_against_the_lock():
    ok = doctor.check_framework("tensorflow", {"tensorflow": "2.19.1"}, PINS, {}, "tensorflow")
    assert (ok.status, ok.found, ok.expected) == (PASS, "2.19.1", "2.19.1")
    drifted = doctor.check_framework("keras", {"keras": "3.15.1"}, PINS, {}, "tensorflow")
    assert (
        drifted.status == FAIL and drifted.expected == "3.12.4" and "keras==3.12.4" in drifted.fix
    )
    broken = doctor.check_framework(
        "tensorflow",
        {"tensorflow": "2.19.1"},
        PINS,
        {"tensorflow": "ImportError: libcudart.so.12"},
        "tensorflow",
    )
    assert broken.status == FAIL and "libcudart" in broken.found
    # The torch backend does not need TensorFlow: its absence only warns.
    absent = doctor.check_framework("tensorflow", {}, PINS, {}, "torch")
    assert absent.status == WARN and "not needed" in absent.fix


def test_drift_fails_on_critical_packages_and_warns_on_the_rest():
    exact = {
        "tensorflow": "2.19.1",
        "keras": "3.12.4",
        "numpy": "2.1.3",
        "tensorflow-metal": "1.2.0",
        "pip": "24.0",
    }
    assert doctor.check_drift(exact, PINS, "envs/x.txt", None, "tensorflow").status == PASS
    minor = {**exact, "numpy": "2.0.0", "requests": "2.0"}
    del minor["tensorflow-metal"]
    pins = {k: v for k, v in PINS.items() if k != "tensorflow-metal"}
    warned = doctor.check_drift(minor, pins, "envs/x.txt", None, "tensorflow")
    assert warned.status == WARN
    assert warned.found == "drifted: numpy 2.0.0 (locked 2.1.3); extra: requests"
    critical = doctor.check_drift(
        {**exact, "keras": "3.15.1"}, PINS, "envs/x.txt", None, "tensorflow"
    )
    assert critical.status == FAIL and "keras 3.15.1 (locked 3.12.4)" in critical.found
    missing = doctor.check_drift({"keras": "3.12.4"}, PINS, "envs/x.txt", None, "tensorflow")
    assert (
        missing.status == FAIL and "missing: numpy, tensorflow, tensorflow-metal" in missing.found
    )


def test_unreadable_export_is_named_and_not_fatal():
    check = doctor.check_drift(
        {}, None, "envs/x.txt", "envs/x.txt: cannot read (PermissionError)", "tensorflow"
    )
    assert check.status == WARN and check.found.startswith("envs/x.txt")
    assert doctor.check_drift({}, None, None, None, "tensorflow").status == SKIP


def test_read_export_parses_pins_and_rejects_garbage(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(
        "# header\nKeras==3.12.4 ; python_full_version >= '3.10' \\\n    --hash=sha256:ab\n"
        "old-only==1.0 ; python_full_version < '3.0' \\\n    --hash=sha256:cd\n"
    )
    assert doctor.read_export(good) == {"keras": "3.12.4"}
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not a requirements file\n")
    with pytest.raises(ValueError, match=r"bad\.txt: not a hash-locked export"):
        doctor.read_export(bad)
    with pytest.raises(ValueError, match="cannot read"):
        doctor.read_export(tmp_path / "absent.txt")


def test_expected_device():
    assert doctor.check_devices([], "tensorflow", None).status == PASS
    assert doctor.check_devices([], "tensorflow", "gpu").status == FAIL
    assert doctor.check_devices(["NVIDIA H100"], "tensorflow", "cpu").status == FAIL
    assert doctor.check_devices(["NVIDIA H100"], "tensorflow", "gpu").status == PASS


def test_metal_plugin_and_legacy_tensorflow_macos():
    mac = ("darwin", "arm64")
    locked = {"tensorflow": "2.19.1", "tensorflow-metal": "1.2.0"}
    assert doctor.check_metal("linux", "x86_64", {}, [], PINS, "tensorflow").status == SKIP
    legacy = doctor.check_metal(*mac, {"tensorflow-macos": "2.16.2"}, [], PINS, "tensorflow")
    assert legacy.status == FAIL and "pip uninstall -y tensorflow-macos" in legacy.fix
    missing = doctor.check_metal(*mac, {"tensorflow": "2.19.1"}, [], PINS, "tensorflow")
    assert missing.status == FAIL and "tensorflow-metal==1.2.0" in missing.fix
    unloaded = doctor.check_metal(*mac, locked, [], PINS, "tensorflow")
    assert unloaded.status == FAIL and "no GPU" in unloaded.found
    # A Mac VM (CI runner) with the CPU asked for: the missing GPU only warns.
    assert doctor.check_metal(*mac, locked, [], PINS, "tensorflow", "cpu").status == WARN
    ok = doctor.check_metal(*mac, locked, ["METAL"], PINS, "tensorflow")
    assert ok.status == PASS and ok.found == "tensorflow 2.19.1 + tensorflow-metal 1.2.0, METAL"


def test_nvidia_driver_without_tensorflow_gpu_names_the_cause():
    assert doctor.check_nvidia(None, [], {}, "tensorflow", "float32").status == SKIP
    no_extra = doctor.check_nvidia(H100, [], {"tensorflow": "2.19.1"}, "tensorflow", "float32")
    assert (
        no_extra.status == FAIL and no_extra.fix == "install the CUDA wheels: uv sync --extra cuda"
    )
    old = {**H100, "driver_version": "470.57.02"}
    too_old = doctor.check_nvidia(
        old, [], {"nvidia-cudnn-cu12": "9.3.0.75"}, "tensorflow", "float32"
    )
    assert too_old.status == FAIL and "too old for CUDA 12" in too_old.fix
    ok = doctor.check_nvidia(H100, ["H100"], {}, "tensorflow", "mixed_bfloat16")
    assert ok.status == PASS
    assert "compute capability 9.0 (Hopper: fp16, bf16, tf32, fp8, int8 tensor cores)" in ok.found


def test_precision_needs_matching_tensor_cores():
    t4 = {**H100, "name": "Tesla T4", "compute_cap": "7.5"}
    assert doctor.check_nvidia(t4, ["T4"], {}, "tensorflow", "mixed_bfloat16").status == WARN
    assert doctor.check_nvidia(t4, ["T4"], {}, "tensorflow", "mixed_float16").status == PASS
    p100 = {**H100, "compute_cap": "6.0"}
    assert doctor.check_nvidia(p100, ["P100"], {}, "tensorflow", "mixed_float16").status == WARN
    mid = {**H100, "driver_version": "535.104.05"}
    assert doctor.check_nvidia(mid, ["H100"], {}, "tensorflow", "float32").status == WARN


def test_computation_placement_and_result():
    assert doctor.check_computation({"placed_on": "GPU:0", "correct": True}, "gpu").status == PASS
    assert doctor.check_computation({"placed_on": "cuda:0", "correct": True}, "gpu").status == PASS
    wrong_place = doctor.check_computation({"placed_on": "CPU:0", "correct": True}, "gpu")
    assert wrong_place.status == FAIL and wrong_place.found == "ran on CPU:0"
    assert doctor.check_computation({"placed_on": "CPU:0", "correct": False}, "cpu").status == FAIL
    assert doctor.check_computation({"error": "RuntimeError: x"}, "cpu").status == FAIL


def test_memory_need_grows_with_width_and_batch():
    # Fitted to the measured peaks (smoke 1.55 GB, quick 12.33 GB; epochs +1.3 GB), + 15 %.
    assert doctor.memory_need(1 / 16, 2, 0, on_gpu=False) / 1e9 == pytest.approx(1.79, abs=0.01)
    assert doctor.memory_need(1.0, 16, 0, on_gpu=False) / 1e9 == pytest.approx(14.2, abs=0.05)
    assert doctor.memory_need(1.0, 16, 2, on_gpu=False) / 1e9 == pytest.approx(15.7, abs=0.05)
    assert doctor.memory_need(1.0, 16, 0, on_gpu=True) / 1e9 == pytest.approx(17.7, abs=0.05)
    assert doctor.memory_need(1.0, 100_000, 0, on_gpu=False) > 60e12
    assert doctor.memory_need(1.0, 32, 0, on_gpu=False) > doctor.memory_need(0.5, 32, 0, False)


def test_memory_fails_only_below_the_estimate_and_names_the_batch_that_fits():
    need = doctor.memory_need(1.0, 16, 0, on_gpu=False)
    estimate = need / doctor.hardware.MEMORY_MARGIN
    margin = doctor.check_memory("w", need, int(estimate + 1e6), None, on_gpu=False, fits=15)
    assert margin.status == WARN and "--batch-size 15 fits" in margin.fix
    short = int(estimate * 0.6)
    fits = doctor.batch_that_fits(1.0, 0, on_gpu=False, available=short)
    assert 0 < fits < 16
    assert doctor.memory_need(1.0, fits, 0, on_gpu=False) <= short
    assert doctor.memory_need(1.0, fits + 1, 0, on_gpu=False) > short
    failed = doctor.check_memory("w", need, short, None, on_gpu=False, fits=fits)
    assert failed.status == FAIL and failed.fix.endswith(
        f"--batch-size {fits} fits (or --preset smoke)"
    )
    assert doctor.batch_that_fits(1.0, 0, on_gpu=False, available=1e9) == 0
    none_fits = doctor.check_memory("w", need, int(1e9), None, on_gpu=False, fits=0)
    assert none_fits.fix.endswith("--preset smoke fits")


def test_memory_check_against_the_need():
    need = doctor.memory_need(1.0, 16, 0, on_gpu=False)
    assert doctor.check_memory("w", need, int(need + 1), None, on_gpu=False).status == PASS
    short = doctor.check_memory("width 1, batch 16", need, int(8e9), None, on_gpu=False)
    assert short.status == FAIL and short.expected == "≥ 14.2 GB for width 1, batch 16"
    gpu_need = doctor.memory_need(1.0, 16, 0, on_gpu=True)
    assert doctor.check_memory("w", gpu_need, int(1e9), int(70e9), on_gpu=True).status == PASS
    assert doctor.check_memory("w", gpu_need, int(64e9), int(4e9), on_gpu=True).status == WARN
    assert doctor.check_memory("w", gpu_need, int(64e9), None, on_gpu=True).status == SKIP


def test_conditions_that_skew_timings():
    assert doctor.check_power(None, None).status == PASS
    assert doctor.check_power({"percent": 80, "power_plugged": False}, None).status == WARN
    assert doctor.check_power({"percent": 80, "power_plugged": True}, True).status == WARN
    assert doctor.check_load(0.4, 2).status == PASS
    busy = doctor.check_load(3.5, 4)
    assert busy.status == WARN and busy.found == "1-minute load 3.50 on 4 CPUs"
    assert doctor.check_thermal(None).status == SKIP
    assert doctor.check_thermal("CPU_Scheduler_Limit = 100\nCPU_Speed_Limit = 100").status == PASS
    hot = doctor.check_thermal("CPU_Speed_Limit = 70")
    assert hot.status == WARN and "70 %" in hot.found


def test_xla_on_metal_fails():
    threads = {"OMP_NUM_THREADS": "unset"}
    assert doctor.check_threads(threads, True, True, False, is_metal=False, cpus=8).status == PASS
    metal = doctor.check_threads(threads, None, False, True, is_metal=True, cpus=8)
    assert metal.status == FAIL and "drop --xla" in metal.fix
    assert doctor.check_threads(threads, True, False, True, is_metal=False, cpus=8).status == FAIL


def test_omp_threads_are_judged_against_the_cpu_count_given():
    threads = {"OMP_NUM_THREADS": "4"}
    assert doctor.check_threads(threads, None, None, False, is_metal=False, cpus=4).status == PASS
    limited = doctor.check_threads(threads, None, None, False, is_metal=False, cpus=16)
    assert limited.status == WARN and limited.expected == "all 16 CPUs used"


def test_disk_space():
    assert doctor.check_disk({"/a": int(5e9)}).status == PASS
    low = doctor.check_disk({"/a": int(5e9), "/b": int(10e6)})
    assert low.status == FAIL and "/b: 0.0 GB free" in low.found


def _doctor(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "segbench", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def _doctor_here(*args, env=None):
    """`segbench doctor` in this process (the real checks, without a second TensorFlow start)."""
    from typer.testing import CliRunner

    from segbench.cli import app

    done = CliRunner().invoke(app, ["doctor", *args], env=env)
    return SimpleNamespace(returncode=done.exit_code, stdout=done.stdout, stderr=done.stderr)


EVERY_CHECK = [
    "python",
    "import",
    "tensorflow",
    "keras",
    "settings",
    "packages",
    "devices",
    "metal",
    "nvidia",
    "compute",
    "memory",
    "precision",
    "cuda-libs",
    "power",
    "load",
    "thermal",
    "cpu-clock",
    "threads-xla",
    "disk",
]


@pytest.mark.slow
def test_real_doctor_on_this_machine_reports_every_check():
    done = _doctor("--json", "--preset", "smoke")
    assert done.returncode == 0, done.stderr
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    assert list(checks) == EVERY_CHECK
    assert checks["python"]["status"] == PASS
    assert checks["import"]["status"] == PASS, checks["import"]["found"]
    assert checks["import"]["found"].startswith("tensorflow 2.19.1, keras ")
    assert checks["tensorflow"]["found"] == "2.19.1" == checks["tensorflow"]["expected"]
    assert checks["packages"]["status"] == PASS, checks["packages"]["found"]
    assert checks["compute"]["status"] == PASS
    assert all(c["status"] in (PASS, WARN, SKIP) for c in checks.values())


def test_expect_gpu_on_a_cpu_machine_fails(tmp_path):
    done = _doctor_here("--json", "--expect", "gpu")
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    if checks["devices"]["found"] != "tensorflow: CPU only":
        pytest.skip("this machine has a GPU")
    assert done.returncode == 1
    assert checks["devices"]["status"] == FAIL
    assert "1 check(s) failed: devices" in done.stderr


def test_corrupt_export_is_named_and_other_checks_still_run(tmp_path):
    corrupt = tmp_path / "requirements.txt"
    corrupt.write_bytes(b"\xff\xfe\x00garbage")
    done = _doctor_here("--json", env={"SEGBENCH_LOCK_EXPORT": str(corrupt)})
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["packages"]["status"] == WARN
    assert checks["packages"]["found"].startswith(str(corrupt))
    assert list(checks) == EVERY_CHECK and checks["compute"]["status"] == PASS


def test_environment_that_drifted_from_the_lock_is_reported(tmp_path):
    export = (ROOT / "envs" / "linux-x86_64-cpu" / "requirements.txt").read_text()
    # As if this environment were a user's own venv: numpy is not the locked one, one more package.
    drifted = (
        export.replace("numpy==2.1.3", "numpy==1.26.4")
        + "somepackage==1.0 \\\n    --hash=sha256:00\n"
    )
    path = tmp_path / "requirements.txt"
    path.write_text(drifted)
    done = _doctor_here("--json", env={"SEGBENCH_LOCK_EXPORT": str(path)})
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["packages"]["status"] == WARN
    assert "numpy 2.1.3 (locked 1.26.4)" in checks["packages"]["found"]
    assert "missing: somepackage" in checks["packages"]["found"]
    assert done.returncode == 0


def test_long_drift_lists_are_shortened():
    installed = {f"pkg{i:02d}": "1" for i in range(20)}
    check = doctor.check_drift(installed, {"pkg00": "1"}, "envs/x.txt", None, "tensorflow")
    assert check.found.startswith("extra: pkg01, pkg02") and check.found.endswith("and 11 more")


def test_unreported_driver_version_is_not_called_too_old():
    partial = {"name": "NVIDIA H100 80GB HBM3", "compute_cap": "9.0"}
    assert doctor.check_nvidia(partial, ["H100"], {}, "torch", "float32").status == PASS


def test_packages_from_elsewhere_in_uv_lock_are_not_extra(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text(
        'version = 1\n\n[[package]]\nname = "pytest"\nversion = "8.4.2"\n'
        'source = { registry = "https://pypi.org/simple" }\n\n'
        '[[package]]\nname = "Matplotlib"\nversion = "3.10.0"\n'
    )
    locked = doctor.lock_versions(lock)
    assert locked == {"pytest": {"8.4.2"}, "matplotlib": {"3.10.0"}}
    installed = {"keras": "3.12.4", "pytest": "8.4.2", "matplotlib": "3.9.0", "pip": "25.0"}
    check = doctor.check_drift(
        installed, {"keras": "3.12.4"}, "envs/x.txt", None, "tensorflow", locked
    )
    assert (check.status, check.found) == (WARN, "extra: matplotlib")


def _fake_nvidia_smi(folder: Path, known_fields: set[str]) -> None:
    """An nvidia-smi stand-in on PATH that answers like driver 580 on an H100 and, like the
    real one, fails a whole query that names a field it does not know."""
    values = {
        "name": "NVIDIA H100 80GB HBM3",
        "driver_version": "580.159.04",
        "compute_cap": "9.0",
        "memory.total": "81559",
        "memory.free": "81079",
    }
    script = folder / "nvidia-smi"
    script.write_text(
        "#!/usr/bin/env python3\nimport sys\n"
        f"values = {values!r}\nknown = {sorted(known_fields)!r}\n"
        "fields = sys.argv[1].split('=', 1)[1].split(',')\n"
        "if any(f not in known for f in fields):\n    sys.exit(2)\n"
        "print(', '.join(values[f] for f in fields))\n"
    )
    script.chmod(0o755)


def test_nvidia_smi_query_fields_and_fallback(tmp_path, monkeypatch):
    from segbench.results.environment import nvidia_smi

    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    every = {"name", "driver_version", "compute_cap", "memory.total", "memory.free"}
    _fake_nvidia_smi(tmp_path, every)
    assert nvidia_smi() == {
        "name": "NVIDIA H100 80GB HBM3",
        "driver_version": "580.159.04",
        "compute_cap": "9.0",
        "memory_total_mib": "81559",
        "memory_free_mib": "81079",
    }
    _fake_nvidia_smi(tmp_path, every - {"compute_cap"})  # drivers before 510
    assert "compute_cap" not in nvidia_smi() and nvidia_smi()["memory_free_mib"] == "81079"


def test_doctor_checks_the_multiworker_set_up(tmp_path):
    import socket

    from segbench.measure.parallel.launch import tf_config

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        config = tf_config([f"127.0.0.1:{port}", "127.0.0.1:9"], 0)
        done = _doctor_here("--json", "--strategy", "multiworker", env={"TF_CONFIG": config})
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["distribution"]["status"] == FAIL
    assert checks["distribution"]["found"] == (
        f"task 0 of 2 at 127.0.0.1:{port}: port {port} is in use"
    )
    assert done.returncode == 1
    free = tf_config([f"127.0.0.1:{port}", "127.0.0.1:9"], 0)  # released above
    done = _doctor_here("--json", "--strategy", "multiworker", env={"TF_CONFIG": free})
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["distribution"]["status"] == WARN
    assert "not listening yet: 127.0.0.1:9" in checks["distribution"]["found"]


@pytest.mark.parametrize(
    ("error", "cause", "fix"),
    [
        (
            "Failed to initialize NVML: Unknown Error",
            "the container lost its GPU devices",
            "restart the container",
        ),
        (
            "Failed to initialize NVML: Driver/library version mismatch",
            "the NVIDIA driver was upgraded without a reboot",
            "reboot, or unload and reload the nvidia kernel modules",
        ),
        ("NVIDIA-SMI has failed because it couldn't communicate", "nvidia-smi fails", "run nvidia"),
    ],
)
def test_a_broken_nvidia_driver_is_named_with_its_cause_not_called_absent(
    tmp_path, monkeypatch, error, cause, fix
):
    """nvidia-smi stand-ins print the real tools' errors and exit 255, as they do."""
    from cli_helpers import fake

    from segbench.measure import backend

    stand_in = tmp_path / "nvidia-smi"
    stand_in.write_text(f'#!/bin/sh\necho "{error}"\nexit 255\n')
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    done = _doctor_here("--json", env=fake())
    nvidia = next(c for c in json.loads(done.stdout)["checks"] if c["id"] == "nvidia")
    assert nvidia["status"] == FAIL
    assert nvidia["found"].startswith(f"nvidia-smi: {error} — likely cause: {cause}")
    assert nvidia["fix"].startswith(fix)
    # The run's device error says the same instead of "install the CUDA wheels".
    with pytest.raises(backend.DeviceError) as refused:
        backend.choose_device("gpu")
    assert f"nvidia-smi says {error!r}" in str(refused.value) and fix in str(refused.value)
    assert "uv sync --extra cuda" not in str(refused.value)


TWO_CARDS = """#!/bin/sh
# nvidia-smi of a machine with two different cards: --id picks one, else both are listed
case "$*" in
  *"--id 1"*|*"--id GPU-bbbb"*) echo "NVIDIA GeForce GTX 1660, 575.64.03, 7.5, 6144, 6000" ;;
  *"--id 0"*) echo "NVIDIA A100-SXM4-80GB, 575.64.03, 8.0, 81920, 81000" ;;
  *"--id "*) echo "No devices were found"; exit 6 ;;
  *) echo "NVIDIA A100-SXM4-80GB, 575.64.03, 8.0, 81920, 81000"
     echo "NVIDIA GeForce GTX 1660, 575.64.03, 7.5, 6144, 6000" ;;
esac
"""


@pytest.mark.parametrize(
    ("visible", "name"),
    [
        (None, "NVIDIA A100-SXM4-80GB"),
        ("1", "NVIDIA GeForce GTX 1660"),
        ("GPU-bbbb,0", "NVIDIA GeForce GTX 1660"),
        ("-1", None),  # every GPU hidden: the run uses none
    ],
)
def test_the_gpu_described_is_the_one_cuda_visible_devices_gives_the_run(
    tmp_path, monkeypatch, visible, name
):
    from segbench.results.environment import nvidia_smi

    stand_in = tmp_path / "nvidia-smi"
    stand_in.write_text(TWO_CARDS)
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    found = nvidia_smi()
    assert (found or {}).get("name") == name


def test_cuda_visible_devices_naming_no_gpu_here_is_said_not_called_no_driver(
    tmp_path, monkeypatch
):
    from segbench.results.environment import nvidia_smi, nvidia_smi_problem

    stand_in = tmp_path / "nvidia-smi"
    stand_in.write_text(TWO_CARDS)
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    error = nvidia_smi()["error"]
    assert error == "CUDA_VISIBLE_DEVICES names no GPU of this machine (7: 2 GPU(s) here)"
    cause, fix = nvidia_smi_problem(error)
    assert "nvidia-smi does not list" in cause and fix.startswith("set CUDA_VISIBLE_DEVICES")


def test_wsl2_finds_nvidia_smi_beside_the_windows_driver_and_names_its_library_path(
    tmp_path, monkeypatch
):
    from segbench.doctor.hardware import check_nvidia
    from segbench.results import environment

    wsl_lib = tmp_path / "wsl" / "lib"
    wsl_lib.mkdir(parents=True)
    (wsl_lib / "nvidia-smi").write_text(
        "#!/bin/sh\necho 'NVIDIA GeForce RTX 4070, 566.36, 8.9, 12282, 11000'\n"
    )
    (wsl_lib / "nvidia-smi").chmod(0o755)
    monkeypatch.setattr(environment, "WSL_LIB", wsl_lib)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no nvidia-smi on PATH, as in WSL2
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    found = environment.nvidia_smi()
    assert found["name"] == "NVIDIA GeForce RTX 4070"
    installed = {"nvidia-cudnn-cu12": "9.3.0.75", "tensorflow": "2.19.1"}
    check = check_nvidia(found, [], installed, "tensorflow", "float32", wsl=True)
    assert check.status == FAIL and "uv sync --extra cuda" not in check.fix
    assert check.fix.startswith("WSL2: TensorFlow finds the Windows driver's libcuda")
    assert "LD_LIBRARY_PATH=/usr/lib/wsl/lib" in check.fix
    # Off WSL the same facts keep the usual advice.
    assert "WSL2" not in check_nvidia(found, [], installed, "tensorflow", "float32").fix
