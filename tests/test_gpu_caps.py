"""Tensor cores by architecture and product line, and the WARN when --precision has no fast
path: a GTX 1660 Ti reports compute capability 7.5 like an RTX 2080 but has no tensor cores."""

import os
import re
from pathlib import Path

import pytest

from segbench import doctor
from segbench.doctor import FAIL, PASS, SKIP, WARN
from segbench.doctor.hardware import check_precision
from segbench.measure import gpu_caps
from segbench.results.environment import nvidia_smi

GTX_1660_TI = {
    "name": "NVIDIA GeForce GTX 1660 Ti",
    "driver_version": "560.35.03",
    "compute_cap": "7.5",
    "memory.total": "6144",
    "memory.free": "5905",
}


def _fake_nvidia_smi(folder: Path, values: dict[str, str]) -> None:
    """An nvidia-smi stand-in on PATH answering segbench's --query-gpu like the real one:
    one CSV line, fields in the order asked, no header or units."""
    script = folder / "nvidia-smi"
    script.write_text(
        "#!/usr/bin/env python3\nimport sys\n"
        f"values = {values!r}\n"
        "assert sys.argv[2:] == ['--format=csv,noheader,nounits'], sys.argv\n"
        "fields = sys.argv[1].split('=', 1)[1].split(',')\n"
        "if any(f not in values for f in fields):\n    sys.exit(2)\n"
        "print(', '.join(values[f] for f in fields))\n"
    )
    script.chmod(0o755)


@pytest.fixture
def gtx_1660_ti(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path, GTX_1660_TI)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return nvidia_smi()


def test_gtx_1660_ti_warns_that_mixed_float16_has_no_fast_path(gtx_1660_ti):
    assert gtx_1660_ti["compute_cap"] == "7.5"
    gpus = [GTX_1660_TI["name"]]
    check = doctor.check_nvidia(gtx_1660_ti, gpus, {}, "tensorflow", "mixed_float16")
    assert check.status == WARN
    assert check.found == (
        "NVIDIA GeForce GTX 1660 Ti, driver 560.35.03, compute capability 7.5"
        " (Turing, GeForce GTX 16xx: no tensor cores)"
    )
    assert check.expected == "fp16 tensor cores for --precision mixed_float16"
    assert check.fix == (
        "mixed_float16 has no fast path on this GPU (GeForce GTX 16xx: no fp16 tensor cores)"
        " and can train several times slower than float32: use --precision float32"
    )
    bf16 = doctor.check_nvidia(gtx_1660_ti, gpus, {}, "tensorflow", "mixed_bfloat16")
    assert bf16.status == WARN and bf16.fix.endswith("use --precision float32")
    assert doctor.check_nvidia(gtx_1660_ti, gpus, {}, "tensorflow", "float32").status == PASS


def test_turing_with_tensor_cores_takes_fp16_but_not_bf16():
    rtx = {
        "name": "NVIDIA GeForce RTX 2080 Ti",
        "driver_version": "560.35.03",
        "compute_cap": "7.5",
    }
    assert doctor.check_nvidia(rtx, ["RTX"], {}, "tensorflow", "mixed_float16").status == PASS
    bf16 = doctor.check_nvidia(rtx, ["RTX"], {}, "tensorflow", "mixed_bfloat16")
    assert bf16.status == WARN and "Turing: fp16, int8 tensor cores" in bf16.found
    assert bf16.fix.endswith("use --precision mixed_float16 or float32")
    t4 = {**rtx, "name": "Tesla T4"}  # a T4 is Turing with tensor cores, not a T400…T2000
    assert doctor.check_nvidia(t4, ["T4"], {}, "tensorflow", "mixed_float16").status == PASS


@pytest.mark.parametrize(
    ("name", "cc", "architecture", "cores"),
    [
        ("Tesla K80", "3.7", "Kepler", ()),
        ("Tesla P100-PCIE-16GB", "6.0", "Pascal", ()),
        ("NVIDIA GeForce GTX 1080 Ti", "6.1", "Pascal", ()),
        ("Tesla V100-SXM2-16GB", "7.0", "Volta", ("fp16",)),
        ("NVIDIA GeForce GTX 1650", "7.5", "Turing", ()),
        ("NVIDIA GeForce GTX 1660 SUPER", "7.5", "Turing", ()),
        ("NVIDIA GeForce MX450", "7.5", "Turing", ()),
        ("Quadro T1000", "7.5", "Turing", ()),
        ("NVIDIA T400 4GB", "7.5", "Turing", ()),
        ("Tesla T4", "7.5", "Turing", ("fp16", "int8")),
        ("Quadro RTX 5000", "7.5", "Turing", ("fp16", "int8")),
        ("NVIDIA A100-SXM4-80GB", "8.0", "Ampere", ("fp16", "bf16", "tf32", "int8")),
        ("NVIDIA GeForce RTX 3090", "8.6", "Ampere", ("fp16", "bf16", "tf32", "int8")),
        ("Orin", "8.7", "Ampere", ("fp16", "bf16", "tf32", "int8")),
        ("NVIDIA GeForce RTX 4090", "8.9", "Ada Lovelace", ("fp16", "bf16", "tf32", "fp8", "int8")),
        ("NVIDIA H100 80GB HBM3", "9.0", "Hopper", ("fp16", "bf16", "tf32", "fp8", "int8")),
        ("NVIDIA B200", "10.0", "Blackwell", ("fp16", "bf16", "tf32", "fp8", "fp6", "fp4", "int8")),
        (
            "NVIDIA GeForce RTX 5090",
            "12.0",
            "Blackwell",
            ("fp16", "bf16", "tf32", "fp8", "fp6", "fp4", "int8"),
        ),
        ("NVIDIA GeForce GTX 1660 Ti", "", "Turing", ()),  # an old driver: the name alone
    ],
)
def test_tensor_cores_by_architecture_and_product_line(name, cc, architecture, cores):
    caps = gpu_caps.capabilities(name, cc)
    assert (caps.architecture, caps.tensor_cores) == (architecture, cores)


def test_unknown_gpus_are_not_judged():
    assert gpu_caps.capabilities("NVIDIA H100", "") is None
    assert gpu_caps.fast_path(None, "mixed_float16") is None
    future = gpu_caps.capabilities("NVIDIA X1", "13.0")
    assert gpu_caps.fast_path(future, "mixed_bfloat16") is True
    partial = {"name": "NVIDIA H100 80GB HBM3", "driver_version": "580.159.04"}
    check = doctor.check_nvidia(partial, ["H100"], {}, "torch", "mixed_float16")
    assert check.status == PASS and "(tensor cores unknown)" in check.found


def test_pascal_has_no_tensor_cores_even_with_fast_fp16():
    p100 = {"name": "Tesla P100-PCIE-16GB", "driver_version": "560.35.03", "compute_cap": "6.0"}
    check = doctor.check_nvidia(p100, ["P100"], {}, "tensorflow", "mixed_float16")
    assert check.status == WARN
    assert "Pascal, P100, fp16 math at twice fp32: no tensor cores" in check.found


def test_a_driver_too_old_still_fails_before_precision_is_judged(gtx_1660_ti):
    old = {**gtx_1660_ti, "driver_version": "470.57.02"}
    assert doctor.check_nvidia(old, ["GTX"], {}, "tensorflow", "mixed_float16").status == FAIL


def test_mixed_precision_on_an_apple_gpu_warns_and_the_cpu_is_not_judged():
    metal = check_precision("mixed_float16", ["METAL"], on_gpu=True, is_metal=True)
    assert metal.status == WARN and metal.found == "mixed_float16 on the Apple GPU (METAL)"
    assert metal.fix.endswith("use --precision float32")
    assert check_precision("float32", ["METAL"], on_gpu=True, is_metal=True).status == PASS
    assert check_precision("mixed_float16", ["H100"], on_gpu=True, is_metal=False).status == PASS
    cpu = check_precision("mixed_bfloat16", [], on_gpu=False, is_metal=False)
    assert cpu.status == SKIP and "CPU flags are not read" in cpu.found


def test_every_row_cites_a_source_the_module_explains():
    explained = set(re.findall(r"^- \[([\w-]+)\]", gpu_caps.__doc__, flags=re.M))
    rows = [*gpu_caps.BY_COMPUTE_CAPABILITY.values(), *(c for _, _, c in gpu_caps.BY_PRODUCT)]
    assert {caps.source for caps in rows} <= explained
