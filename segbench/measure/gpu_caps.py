"""Which low-precision math an NVIDIA GPU does fast: its tensor cores, by architecture and
product line, and whether a --precision has a fast path on it.

The compute capability names the architecture, but not the product line: GeForce GTX 16xx
(TU116/TU117) report 7.5 like the RTX 20xx and T4, yet have no tensor cores, so a name pattern
overrides the architecture's row. Keras's mixed_float16 needs fp16 tensor cores to be faster
than float32 (without them it is slower, several times on a GTX 1660 Ti), mixed_bfloat16 needs
bf16 ones. Apple GPUs and CPUs are judged in segbench.doctor.hardware.

Sources, cited per row:
- [cuda] CUDA C++ Programming Guide, "Compute Capabilities" and "Arithmetic Instructions"
  (throughput per SM): 6.0 (P100) does fp16 at twice the fp32 rate, 6.1 at 1/64 of it; the
  architecture of each compute capability, 10.x/11.x/12.x Blackwell (CUDA 12.8/12.9/13.0).
- [volta] NVIDIA Tesla V100 GPU Architecture whitepaper (2017): first tensor cores, fp16 input
  with fp32 accumulate; Jetson AGX Xavier (7.2) has them too.
- [turing] NVIDIA Turing GPU Architecture whitepaper (2018): TU102/TU104/TU106 (RTX 20xx, Titan
  RTX, Quadro RTX, T4) tensor cores for fp16, int8 and int4.
- [tu11x] GeForce GTX 16 series (TU116, TU117; also MX450/MX550 and the Quadro/NVIDIA T400…
  T2000 on TU117): Turing without tensor cores, with fp16 units at twice the fp32 rate
  (NVIDIA's GTX 1660 Ti launch material; SPEC §8).
- [ampere] NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020) and NVIDIA Ampere GA102
  GPU Architecture whitepaper (2020): third-generation tensor cores add tf32 and bf16 (8.0
  A100/A30, 8.6 RTX 30xx/A40/A10, 8.7 Jetson Orin).
- [ada] NVIDIA Ada GPU Architecture whitepaper (2022): fourth-generation tensor cores add fp8
  (8.9: RTX 40xx, L4, L40, RTX 6000 Ada).
- [hopper] NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022): fp8 (9.0: H100, H200).
- [blackwell] NVIDIA Blackwell Architecture Technical Brief (2024): fifth-generation tensor
  cores add fp6 and fp4 (10.0 B200, 10.3 B300, 11.0 Thor, 12.0 RTX 50xx, 12.1 GB10).
- [tf-guide] TensorFlow's mixed precision guide: mixed precision speeds up "recent NVIDIA
  GPUs" of compute capability 7.0 or higher through tensor cores; elsewhere it may run slower.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FP16, BF16, TF32, FP8, FP6, FP4, INT8 = "fp16", "bf16", "tf32", "fp8", "fp6", "fp4", "int8"
# The tensor-core math each --precision needs to be faster than float32.
NEEDS = {"mixed_float16": FP16, "mixed_bfloat16": BF16}


@dataclass(frozen=True)
class GpuCaps:
    """The tensor-core math of one GPU, the architecture it comes from, and why we say so."""

    architecture: str
    tensor_cores: tuple[str, ...]  # math formats its tensor cores take, FP16… order
    source: str  # a key of the module docstring's sources
    line: str = ""  # the product line, where it differs from the rest of its architecture


_NONE: tuple[str, ...] = ()
_VOLTA = (FP16,)
_TURING = (FP16, INT8)
_AMPERE = (FP16, BF16, TF32, INT8)
_ADA = (FP16, BF16, TF32, FP8, INT8)
_BLACKWELL = (FP16, BF16, TF32, FP8, FP6, FP4, INT8)

# (major, minor) compute capability → architecture; a minor not listed takes the major's row.
BY_COMPUTE_CAPABILITY: dict[tuple[int, int | None], GpuCaps] = {
    (3, None): GpuCaps("Kepler", _NONE, "cuda"),
    (5, None): GpuCaps("Maxwell", _NONE, "cuda"),
    (6, None): GpuCaps("Pascal", _NONE, "cuda"),
    (6, 0): GpuCaps("Pascal", _NONE, "cuda", "P100, fp16 math at twice fp32"),
    (7, 0): GpuCaps("Volta", _VOLTA, "volta"),
    (7, 2): GpuCaps("Volta", _TURING, "volta"),
    (7, 5): GpuCaps("Turing", _TURING, "turing"),
    (8, None): GpuCaps("Ampere", _AMPERE, "ampere"),
    (8, 9): GpuCaps("Ada Lovelace", _ADA, "ada"),
    (9, None): GpuCaps("Hopper", _ADA, "hopper"),
    (10, None): GpuCaps("Blackwell", _BLACKWELL, "blackwell"),
    (11, None): GpuCaps("Blackwell", _BLACKWELL, "blackwell"),
    (12, None): GpuCaps("Blackwell", _BLACKWELL, "blackwell"),
}
# Product lines whose chip lacks what its compute capability suggests: (name pattern, the
# compute capability it reports, the row that replaces the architecture's).
BY_PRODUCT: tuple[tuple[re.Pattern[str], str, GpuCaps], ...] = (
    (
        re.compile(r"GTX\s*16\d\d", re.I),
        "7.5",
        GpuCaps("Turing", _NONE, "tu11x", "GeForce GTX 16xx"),
    ),
    (re.compile(r"\bMX\s*[45]50\b", re.I), "7.5", GpuCaps("Turing", _NONE, "tu11x", "MX450/MX550")),
    (
        re.compile(r"\bT(400|500|550|600|1000|1200|2000)\b"),
        "7.5",
        GpuCaps("Turing", _NONE, "tu11x", "T400…T2000 (TU117)"),
    ),
)


def _compute_capability(text: str) -> tuple[int, int] | None:
    found = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", text or "")
    return (int(found.group(1)), int(found.group(2))) if found else None


def capabilities(name: str, compute_cap: str) -> GpuCaps | None:
    """The tensor-core math of the GPU nvidia-smi names, or None when neither its name nor its
    compute capability ("7.5") is known. A name with no compute capability is judged by its
    product line only."""
    cc = _compute_capability(compute_cap)
    for pattern, reported, caps in BY_PRODUCT:
        if pattern.search(name or "") and (cc is None or cc == _compute_capability(reported)):
            return caps
    if cc is None:
        return None
    major, minor = cc
    if (major, minor) in BY_COMPUTE_CAPABILITY:
        return BY_COMPUTE_CAPABILITY[major, minor]
    if (major, None) in BY_COMPUTE_CAPABILITY:
        return BY_COMPUTE_CAPABILITY[major, None]
    newest = max(k[0] for k in BY_COMPUTE_CAPABILITY)
    if major > newest:  # newer than this table: at least what the newest row has
        known = BY_COMPUTE_CAPABILITY[newest, None].architecture
        return GpuCaps(f"newer than {known}", _BLACKWELL, "cuda")
    return GpuCaps(f"compute capability {major}.{minor}", _NONE, "cuda")


def describe(caps: GpuCaps | None) -> str:
    """'Turing: fp16, int8 tensor cores', 'Turing, GeForce GTX 16xx: no tensor cores'."""
    if caps is None:
        return "tensor cores unknown"
    named = caps.architecture + (f", {caps.line}" if caps.line else "")
    cores = (
        ", ".join(caps.tensor_cores) + " tensor cores" if caps.tensor_cores else "no tensor cores"
    )
    return f"{named}: {cores}"


def fast_path(caps: GpuCaps | None, precision: str) -> bool | None:
    """Whether `precision` runs on tensor cores made for it (None: the GPU is unknown).
    float32 always has its path (tf32 tensor cores on Ampere and newer are a bonus)."""
    needed = NEEDS.get(precision)
    if needed is None:
        return True
    return None if caps is None else needed in caps.tensor_cores
