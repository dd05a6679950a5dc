"""Why a framework failed at run time, in one line: the likely cause, from the error's text and
the library versions doctor saw, and the fix.

The patterns are the messages users report: "DNN library initialization failed" / "Failed to
get convolution algorithm" / CUDNN_STATUS_* (cuDNN missing, too old or out of memory),
CUBLAS_STATUS_* (cuBLAS), CUDA_ERROR_* / "CUDA driver version is insufficient" (driver), and
the out-of-memory errors of TensorFlow, PyTorch and JAX. Judges text; never prints.
"""

from __future__ import annotations

import re
from importlib import metadata

# Each: (pattern of the error text, the library it points at, the wheel that ships it).
_LIBRARIES = (
    (re.compile(r"DNN library|cudnn|convolution algorithm", re.I), "cuDNN", "nvidia-cudnn-cu12"),
    (re.compile(r"cublas|blas (gemm|xgemm)", re.I), "cuBLAS", "nvidia-cublas-cu12"),
    (
        re.compile(r"CUDA_ERROR|cuda driver|cuInit|CUDA runtime|cudaError", re.I),
        "the CUDA driver",
        "nvidia-cuda-runtime-cu12",
    ),
)
_MEMORY = re.compile(r"ResourceExhausted|OutOfMemory|RESOURCE_EXHAUSTED|out of memory", re.I)


def first_line(error: BaseException) -> str:
    """`Type: first line of the message`, at most 200 characters."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200].rstrip(": ")


def built_with(framework: str = "tensorflow") -> dict[str, str]:
    """The CUDA wheels (name → version) the framework's release asks for (its and-cuda extra):
    the libraries it was built with."""
    try:
        requirements = metadata.requires(framework) or []
    except metadata.PackageNotFoundError:
        return {}
    found = {}
    for line in requirements:
        match = re.match(r"(nvidia-[\w-]+-cu\d+)\s*==\s*([\w.]+)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def older_cuda_libraries(installed: dict[str, str], wanted: dict[str, str]) -> list[str]:
    """`name installed (built with wanted)` for each CUDA wheel older than the build's."""
    older = []
    for name, version in sorted(wanted.items()):
        have = installed.get(name)
        if have is not None and _numbers(have) < _numbers(version):
            older.append(f"{name} {have} (built with {version})")
    return older


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


def explain(
    error: BaseException | str, installed: dict[str, str], gpu_stack: dict[str, str]
) -> tuple[str, str]:
    """(likely cause, fix) of a framework error, naming the versions doctor saw."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    if _MEMORY.search(text[:2000]):
        return (
            "the device ran out of memory",
            "lower --batch-size or --width, or close other programs using the device",
        )
    stack = ", ".join(f"{k} {v}" for k, v in sorted(gpu_stack.items())) or "no GPU stack recorded"
    for pattern, library, wheel in _LIBRARIES:
        if pattern.search(text[:2000]):
            wanted = built_with().get(wheel)
            have = installed.get(wheel)
            seen = f"{wheel} {have}" if have else f"no {wheel} wheel (a system {library}?)"
            built = f", TensorFlow built with {wanted}" if wanted else ""
            return (
                f"{library} failed ({seen}{built}; {stack})",
                "install the CUDA libraries TensorFlow was built with: uv sync --extra cuda "
                "--locked (and keep LD_LIBRARY_PATH from putting other copies first), update the "
                "NVIDIA driver if nvidia-smi is older than 555.42; segbench doctor checks them",
            )
    return (
        f"the framework failed ({stack})",
        "run segbench doctor; if it passes, report this line with the result file",
    )
