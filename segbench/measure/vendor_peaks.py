"""Published dense peaks (no structured sparsity) of the devices this benchmark runs on, in
TFLOP/s, and memory bandwidth in GB/s; and the CPU peak estimated from cores × clock × FLOP
per cycle. Each row names where its figures come from. Read by peak.py; never prints."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

# Which figure a run is held against: float32 runs use TF32 tensor cores where the GPU has
# them (TensorFlow and cuDNN convolutions use TF32 by default on Ampere and newer).
BASIS = {"float32": "tf32", "mixed_float16": "fp16", "mixed_bfloat16": "bf16"}


@dataclass(frozen=True)
class VendorPeak:
    name: str
    pattern: str  # a regular expression matched against the device's name
    fp32: float
    tf32: float | None
    fp16: float | None  # tensor cores, FP32 accumulate where the vendor gives both
    bf16: float | None
    memory_gbps: float
    source: str

    def tflops(self, precision: str) -> tuple[float, str]:
        """The peak a run in `precision` is held against, and which figure it is."""
        basis = BASIS.get(precision, "fp32")
        value = getattr(self, basis)
        return (value, basis) if value is not None else (self.fp32, "fp32")


_H100 = "NVIDIA H100 Tensor Core GPU datasheet (dense = sparsity figure ÷ 2)"
_ADA = "NVIDIA Ada GPU architecture whitepaper, appendix tables (dense)"
_AMPERE = "NVIDIA Ampere GA102 GPU architecture whitepaper, table 9 (dense)"
NVIDIA = [
    VendorPeak("H200", r"H200", 67, 494.7, 989.4, 989.4, 4800, "NVIDIA H200 datasheet (÷ 2)"),
    VendorPeak("H100 NVL", r"H100 NVL", 60, 417.5, 835.5, 835.5, 3900, _H100),
    VendorPeak("H100 PCIe", r"H100.*PCIe", 51, 378, 756, 756, 2000, _H100),
    VendorPeak("H100 SXM", r"H100", 67, 494.7, 989.4, 989.4, 3350, _H100),
    VendorPeak("A100 80GB", r"A100.*80GB", 19.5, 156, 312, 312, 2039, "NVIDIA A100 datasheet"),
    VendorPeak("A100 40GB", r"A100", 19.5, 156, 312, 312, 1555, "NVIDIA A100 datasheet"),
    VendorPeak("L40S", r"L40S", 91.6, 183, 362.05, 362.05, 864, "NVIDIA L40S datasheet (÷ 2)"),
    VendorPeak("L4", r"\bL4\b", 30.3, 60, 121, 121, 300, "NVIDIA L4 datasheet (÷ 2)"),
    VendorPeak("T4", r"\bT4\b", 8.1, None, 65, None, 320, "NVIDIA T4 datasheet"),
    VendorPeak("V100 PCIe", r"V100.*PCIE", 14, None, 112, None, 900, "NVIDIA V100 datasheet"),
    VendorPeak("V100 SXM2", r"V100", 15.7, None, 125, None, 900, "NVIDIA V100 datasheet"),
    VendorPeak("RTX 6000 Ada", r"RTX 6000 Ada", 91.1, 182.1, 364.2, 364.2, 960, _ADA),
    VendorPeak(
        "Quadro RTX 6000 (Turing)", r"Quadro RTX 6000", 16.3, None, 130.5, None, 672,
        "NVIDIA Quadro RTX 6000 datasheet",
    ),
    VendorPeak("RTX 4090", r"RTX 4090", 82.6, 82.6, 165.2, 165.2, 1008, _ADA),
    VendorPeak("RTX 3090", r"RTX 3090", 35.6, 35.6, 71, 71, 936, _AMPERE),
]  # fmt: skip

# Apple GPUs: 128 FP32 ALUs per core, an FMA each (2 FLOP) per cycle, at the GPU's top clock;
# FP16 runs at the FP32 rate. Apple published 2.6 / 5.2 / 10.4 / 21 TFLOP/s for the M1
# family, which this reproduces; later clocks are from third-party measurements (estimates).
# Memory bandwidth: Apple's product pages.
APPLE_CLOCK_GHZ = {"M1": 1.278, "M2": 1.398, "M3": 1.38, "M4": 1.578}
APPLE_MEMORY_GBPS = {
    "M1": 68.25, "M1 Pro": 200, "M1 Max": 400, "M1 Ultra": 800,
    "M2": 100, "M2 Pro": 200, "M2 Max": 400, "M2 Ultra": 800,
    "M3": 100, "M3 Pro": 150, "M3 Max": 400, "M3 Ultra": 819,
    "M4": 120, "M4 Pro": 273, "M4 Max": 546,
}  # fmt: skip


def apple_peak(chip: str, gpu_cores: int) -> VendorPeak | None:
    """The peak of an Apple chip ("Apple M2 Pro") with `gpu_cores` GPU cores, or None."""
    match = re.search(r"\b(M\d)( Pro| Max| Ultra)?\b", chip)
    if not match or match.group(1) not in APPLE_CLOCK_GHZ:
        return None
    family, tier = match.group(1), match.group(0)
    tflops = round(gpu_cores * 128 * 2 * APPLE_CLOCK_GHZ[family] / 1000, 2)
    source = "Apple (M1 family)" if family == "M1" else "estimate: cores × 128 ALUs × 2 × clock"
    return VendorPeak(
        f"Apple {tier} {gpu_cores}-core GPU", re.escape(chip), tflops, None, tflops, tflops,
        APPLE_MEMORY_GBPS.get(tier, 0), source,
    )  # fmt: skip


def apple_gpu_cores(run=subprocess.run) -> int | None:
    """The Apple GPU's core count as the I/O registry reports it (macOS), or None."""
    try:
        out = run(
            ["ioreg", "-rc", "AGXAccelerator", "-d", "1"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'"gpu-core-count"\s*=\s*(\d+)', out)
    return int(match.group(1)) if match else None


def nvidia_peak(device_name: str) -> VendorPeak | None:
    """The table row for an NVIDIA GPU name ("NVIDIA H100 80GB HBM3"), or None."""
    return next((p for p in NVIDIA if re.search(p.pattern, device_name, re.IGNORECASE)), None)


# FP32 FLOP per cycle per core: two FMA units of the widest vector ISA (an estimate: some
# parts have one AVX-512 FMA unit; Apple's performance cores have four 128-bit NEON FMAs).
FLOP_PER_CYCLE = (("avx512f", 64), ("avx2", 32), ("avx", 16), ("asimd", 32), ("neon", 32))


def cpu_peak(
    model: str, cores: int, ghz: float, flags: set[str], allowed: float | None = None
) -> VendorPeak | None:
    """An estimate of the CPU's FP32 peak from cores × clock × FLOP per cycle, or None when
    the ISA or the clock is unknown. `allowed`: the CPUs' worth a container's cgroup allows
    (quota or cpuset), counted instead of the cores where fewer."""
    per_cycle = next((n for flag, n in FLOP_PER_CYCLE if flag in flags), None)
    if per_cycle is None or ghz <= 0 or cores <= 0:
        return None
    counted = f"{cores} cores"
    if allowed is not None and allowed < cores:
        counted = f"{allowed:g} of {cores} cores (the container's limit)"
        cores = allowed
    tflops = cores * ghz * per_cycle / 1000
    widest = next(flag for flag, n in FLOP_PER_CYCLE if flag in flags)
    return VendorPeak(
        f"{model} ({counted} × {ghz:g} GHz × {per_cycle} FLOP/cycle, {widest})",
        re.escape(model), tflops, None, None, None, 0,
        "estimate: cores × clock × FLOP per cycle",
    )  # fmt: skip


def linux_cpu_facts(cpuinfo: str, max_khz: str | None) -> tuple[int, float, set[str]]:
    """Physical cores, clock (GHz: the highest cpufreq allows, else the reported one) and ISA
    flags from /proc/cpuinfo text."""
    listed = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", cpuinfo, re.M)
    flags = set(listed.group(1).split()) if listed else set()
    cores = {
        (block.get("physical id", "0"), block.get("core id", str(i)))
        for i, block in enumerate(_blocks(cpuinfo))
        if "processor" in block
    }
    mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M)
    ghz = int(max_khz) / 1e6 if max_khz else float(mhz.group(1)) / 1000 if mhz else 0.0
    return len(cores), ghz, flags


def _blocks(cpuinfo: str) -> list[dict[str, str]]:
    blocks = []
    for text in cpuinfo.strip().split("\n\n"):
        block = {}
        for line in text.splitlines():
            key, _, value = line.partition(":")
            block[key.strip()] = value.strip()
        blocks.append(block)
    return blocks
