"""How close to the ceiling: the matmul probe, the vendor table and the percentages."""

import pytest

from segbench.measure import backend
from segbench.measure.peak import measure_matmul, peak
from segbench.measure.vendor_peaks import (
    NVIDIA,
    apple_gpu_cores,
    apple_peak,
    cpu_peak,
    linux_cpu_facts,
    nvidia_peak,
)

# /proc/cpuinfo of a two-socket machine, 2 cores per socket, 2 threads per core (abridged
# to the fields read): 8 logical CPUs, 4 physical cores.
CPUINFO = "\n\n".join(
    f"processor\t: {i}\nmodel name\t: Intel(R) Xeon(R) Gold 6248\nphysical id\t: {i // 4}\n"
    f"core id\t\t: {(i % 4) // 2}\ncpu MHz\t\t: 2500.000\n"
    "flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq"
    for i in range(8)
)


def test_matmul_probe_measures_positive_tflops_on_the_cpu():
    backend.select_backend("tensorflow")
    tflops, method = measure_matmul("cpu", "float32", size=256, seconds=0.05)
    assert 0 < tflops < 50  # no CPU reaches 50 TFLOP/s in float32
    assert method.startswith("matmul 256×256 float32, median of ")
    assert method.endswith("tensorflow on the CPU")


def test_gpu_names_match_their_table_rows():
    found = {
        name: nvidia_peak(name).name
        for name in (
            "NVIDIA H100 80GB HBM3",
            "NVIDIA H100 PCIe",
            "NVIDIA H100 NVL",
            "NVIDIA H200",
            "NVIDIA A100-SXM4-80GB",
            "NVIDIA A100-SXM4-40GB",
            "NVIDIA L4",
            "NVIDIA L40S",
            "Tesla T4",
            "Tesla V100-SXM2-16GB",
            "Tesla V100-PCIE-32GB",
            "Quadro RTX 6000",
            "NVIDIA RTX 6000 Ada Generation",
            "NVIDIA GeForce RTX 4090",
            "NVIDIA GeForce RTX 3090",
        )
    }
    assert found == {
        "NVIDIA H100 80GB HBM3": "H100 SXM",
        "NVIDIA H100 PCIe": "H100 PCIe",
        "NVIDIA H100 NVL": "H100 NVL",
        "NVIDIA H200": "H200",
        "NVIDIA A100-SXM4-80GB": "A100 80GB",
        "NVIDIA A100-SXM4-40GB": "A100 40GB",
        "NVIDIA L4": "L4",
        "NVIDIA L40S": "L40S",
        "Tesla T4": "T4",
        "Tesla V100-SXM2-16GB": "V100 SXM2",
        "Tesla V100-PCIE-32GB": "V100 PCIe",
        "Quadro RTX 6000": "Quadro RTX 6000 (Turing)",
        "NVIDIA RTX 6000 Ada Generation": "RTX 6000 Ada",
        "NVIDIA GeForce RTX 4090": "RTX 4090",
        "NVIDIA GeForce RTX 3090": "RTX 3090",
    }
    assert nvidia_peak("NVIDIA GeForce GTX 1080") is None
    assert all(row.source for row in NVIDIA)


def test_precision_picks_the_published_figure():
    h100 = nvidia_peak("NVIDIA H100 80GB HBM3")
    assert h100.tflops("float32") == (494.7, "tf32")
    assert h100.tflops("mixed_bfloat16") == (989.4, "bf16")
    t4 = nvidia_peak("Tesla T4")
    assert t4.tflops("float32") == (8.1, "fp32")  # Turing has no TF32
    assert t4.tflops("mixed_bfloat16") == (8.1, "fp32")  # nor BF16 tensor cores


def test_apple_m1_family_reproduces_apples_published_figures():
    # Apple: M1 2.6, M1 Pro 5.2, M1 Max 10.4, M1 Ultra 21 TFLOP/s (FP32).
    for chip, cores, published in (
        ("Apple M1", 8, 2.6),
        ("Apple M1 Pro", 16, 5.2),
        ("Apple M1 Max", 32, 10.4),
        ("Apple M1 Ultra", 64, 21.0),
    ):
        row = apple_peak(chip, cores)
        assert row.fp32 == pytest.approx(published, rel=0.01), chip
        assert not row.source.startswith("estimate")
    m3 = apple_peak("Apple M3 Max", 40)
    assert m3.source.startswith("estimate") and m3.memory_gbps == 400
    assert apple_peak("Intel(R) Core(TM) i9", 32) is None


def test_apple_gpu_core_count_is_read_from_the_io_registry():
    def ioreg(*args, **kwargs):
        class Done:
            stdout = '+-o AGXAcceleratorG13X  <class AGXAcceleratorG13X>\n  "gpu-core-count" = 32\n'

        return Done()

    assert apple_gpu_cores(ioreg) == 32
    assert apple_gpu_cores(lambda *a, **k: (_ for _ in ()).throw(OSError("no ioreg"))) is None


def test_cpu_peak_counts_physical_cores_and_marks_an_estimate():
    cores, ghz, flags = linux_cpu_facts(CPUINFO, max_khz="3900000")
    assert (cores, ghz) == (4, 3.9)
    row = cpu_peak("Intel(R) Xeon(R) Gold 6248", cores, ghz, flags)
    assert row.fp32 == pytest.approx(4 * 3.9 * 64 / 1000)
    assert row.source.startswith("estimate") and "avx512f" in row.name
    assert linux_cpu_facts(CPUINFO, None)[1] == 2.5  # no cpufreq: the reported clock
    assert cpu_peak("?", 4, 3.0, {"fpu"}) is None


def test_percentages_of_the_measured_and_vendor_ceilings():
    row = nvidia_peak("NVIDIA H100 PCIe")
    p = peak(94.5, "float32", (300.0, "matmul 8192×8192"), row, [])
    assert p.achieved_pct_of_measured == pytest.approx(31.5)
    assert p.achieved_pct_of_vendor == pytest.approx(25.0)
    assert (p.vendor_basis, p.vendor_estimate, p.vendor_memory_gbps) == ("tf32", False, 2000)
    skipped = peak(94.5, "float32", None, None, ["measured ceiling: skipped (--no-peak)"])
    assert skipped.measured_tflops is None and skipped.achieved_pct_of_vendor is None
    assert skipped.reason == "measured ceiling: skipped (--no-peak)"
