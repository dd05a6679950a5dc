"""What differs between Keras backends: device discovery, placement, synchronisation, determinism.

Everything else in segbench goes through keras.layers / keras.ops. Backend libraries are
imported lazily, inside the function that needs them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from segbench.errors import Unavailable

BACKENDS = ("tensorflow", "jax", "torch")


class DeviceError(Unavailable):
    """The requested device is not available; the message says what was found and what to do."""


@dataclass(frozen=True)
class Device:
    """The device a benchmark runs on: Keras's device string and a readable name."""

    kind: str  # "cpu" or "gpu"
    keras_name: str  # for keras.device(): "cpu" or "gpu" (the first GPU)
    description: str


def select_backend(name: str, import_now: bool = True) -> None:
    """Choose the Keras backend; must run before keras is first imported. With `import_now`
    False, keras is imported later by `import_quietly` (after doctor's child-process probe)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec(name) is None:
        how = "uv sync --extra jax" if name == "jax" else f"uv pip install {name}"
        raise Unavailable(
            f"--backend {name}: {name} is not installed here; install it "
            f"({how}, or pip install {name}) or use --backend tensorflow"
        )
    os.environ["KERAS_BACKEND"] = name
    # TensorFlow's C++ start-up messages (CUDA plugin registration etc.) drown the output;
    # `segbench doctor` reports the device state instead. Setting TF_CPP_MIN_LOG_LEVEL
    # below 3 brings them back.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if import_now:
        import_quietly()


def import_quietly() -> None:
    """Import keras (and its backend): the backend's start-up chatter silenced (unless
    TF_CPP_MIN_LOG_LEVEL is below 3), a signal acted on once the import is done."""
    if "keras" in sys.modules:
        return
    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() == "3"
    with quietly():
        import keras  # noqa: F401

        if quiet and os.environ.get("KERAS_BACKEND") == "tensorflow":
            import tensorflow as tf

            # Retracing notices are expected: the epoch protocol's last batch is smaller.
            tf.get_logger().setLevel("ERROR")


@contextmanager
def quietly():
    """For a framework's import: its start-up chatter silenced (unless TF_CPP_MIN_LOG_LEVEL is
    below 3; some of it is written before absl's logging starts, straight to fd 2), and a
    signal acted on once the block ends (signals_deferred)."""
    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() == "3"
    with signals_deferred(), stderr_silenced() if quiet else contextlib.nullcontext():
        yield


@contextmanager
def signals_deferred():
    """SIGINT, SIGTERM and SIGHUP are noted inside the block and delivered again, to the
    handler they would have met, when it ends. For imports: a KeyboardInterrupt raised inside
    one is dropped when it lands in a gc callback (jax's _xla_gc_callback: "Exception ignored",
    unseen with stderr silenced, and the run goes on) or crashes an extension module's
    initialisation (SIGSEGV in jaxlib's)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        handler = signal.getsignal(number) if number is not None else None
        if handler not in (None, signal.SIG_IGN):  # an ignored signal stays ignored (nohup)
            previous[number] = signal.signal(number, lambda signum, frame: noted.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if noted:
            signal.raise_signal(noted[0])  # the first one: Ctrl-C → 130, SIGTERM → 143, ...


@contextmanager
def stderr_silenced():
    """Point file descriptor 2 at /dev/null for the duration (Python exceptions still surface)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# The C++ runtime's informational lines (absl's "I0000 00:00:… file.cc:N] …" and its note that
# logging is not initialised yet): start-up chatter of gRPC and the coordination service,
# printed even with TF_CPP_MIN_LOG_LEVEL=3.
RUNTIME_INFO = re.compile(
    r"^(I\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\] |WARNING: All log messages before "
    r"absl::InitializeLog\(\) is called are written to STDERR)"
)


@contextmanager
def runtime_info_dropped():
    """Send file descriptor 2 to a temporary file for the duration, then write back every line
    that is not the runtime's informational chatter (RUNTIME_INFO): warnings and errors stay."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [
                line
                for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                if not RUNTIME_INFO.match(line)
            ]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def backend_name() -> str:
    import keras

    return keras.backend.backend()


def gpu_names() -> list[str]:
    """Names of the GPUs the current backend can use (empty when none)."""
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf

        names = []
        for gpu in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        return names
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.backends.mps.is_available():
            return ["Apple MPS"]
        return []
    import jax

    return [d.device_kind for d in jax.devices() if d.platform != "cpu"]


def gpu_details() -> dict[str, object]:
    """Compute capability ("9.0") and free memory (bytes) of the first GPU, where known."""
    backend = backend_name()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            cc = (
                tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
                if gpus
                else None
            )
            return {"compute_cap": f"{cc[0]}.{cc[1]}"} if cc else {}
        if backend == "torch":
            import torch

            if not torch.cuda.is_available():
                return {}
            major, minor = torch.cuda.get_device_capability(0)
            free, _ = torch.cuda.mem_get_info(0)
            return {"compute_cap": f"{major}.{minor}", "memory_free": int(free)}
    except (RuntimeError, ValueError, IndexError):
        return {}
    return {}


def gpu_install_hint() -> str:
    """What to install or run so that the current backend sees a GPU (first: a driver that is
    there but broken, as nvidia-smi says, which no install fixes)."""
    from segbench.results.environment import nvidia_smi, nvidia_smi_problem

    found = nvidia_smi()
    if found and "error" in found:
        cause, fix = nvidia_smi_problem(found["error"])
        return f"nvidia-smi says {found['error']!r} — likely cause: {cause}; fix: {fix}"
    backend = backend_name()
    if backend == "tensorflow":
        return (
            "on Linux with an NVIDIA GPU run `uv sync --extra cuda` (or the segbench-cuda image "
            "with --gpus all); on macOS arm64 `uv sync` installs tensorflow-metal 1.2.0"
        )
    if backend == "torch":
        return "install a CUDA build of PyTorch (or use macOS arm64 for MPS)"
    return "install jax with its CUDA plugin (pip install 'jax[cuda12]')"


def choose_device(requested: str) -> Device:
    """The device for `--device auto|cpu|gpu`; DeviceError when a GPU is required but absent."""
    gpus = gpu_names()
    hint = gpu_install_hint() if requested == "gpu" and not gpus else ""
    if hint.startswith("nvidia-smi says"):  # a broken driver: no install or flag fixes it
        raise DeviceError(f"--device gpu: the {backend_name()} backend sees no GPU; {hint}")
    if requested == "gpu" and not gpus and os.environ.get("SEGBENCH_IMAGE") == "cuda":
        raise DeviceError(
            "no NVIDIA GPU visible: run with --gpus all and the NVIDIA Container Toolkit"
        )
    if requested == "gpu" and not gpus:
        raise DeviceError(
            f"--device gpu: the {backend_name()} backend sees no GPU (found only the CPU); {hint}"
        )
    if requested == "cpu" or not gpus:
        if backend_name() == "tensorflow":
            # Hidden GPUs guarantee nothing is placed there behind our back.
            import tensorflow as tf

            tf.config.set_visible_devices([], "GPU")
        return Device("cpu", "cpu", "CPU")
    return Device("gpu", "gpu", gpus[0])


def configure_determinism(seed: int, deterministic: bool) -> None:
    """Seed every random generator; with `deterministic`, also ask for deterministic kernels."""
    import keras

    with quietly():  # Keras seeds TensorFlow too where it imports, beside any backend
        keras.utils.set_random_seed(seed)
    if not deterministic:
        return
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def synchronize() -> None:
    """Block until every kernel queued on the device has finished."""
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf

        # A multi-worker process (collectives configured): TensorFlow cannot sync the other
        # workers' devices from here (InternalError). Keras's train_on_batch has already
        # returned numpy values, which waited for this device.
        with contextlib.suppress(tf.errors.InternalError):
            tf.test.experimental.sync_devices()
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        elif torch.backends.mps.is_available():
            torch.mps.synchronize()
    else:
        import jax

        jax.effects_barrier()


def placement(tensor) -> str:
    """Where a backend tensor lives, e.g. '/job:localhost/.../device:GPU:0', 'cuda:0', 'cpu'."""
    backend = backend_name()
    if backend == "tensorflow":
        return tensor.device.rpartition("device:")[2]  # e.g. "GPU:0"
    if backend == "torch":
        return str(tensor.device)
    return ", ".join(str(d) for d in tensor.devices())


def to_device(array):
    """A backend tensor holding `array`, placed on the device of the current keras.device scope."""
    from keras import ops

    tensor = ops.convert_to_tensor(array)
    if backend_name() == "tensorflow":
        import tensorflow as tf

        # An eager constant lives in host memory and is copied at every use; identity under
        # the device scope makes the copy once, before timing starts.
        tensor = tf.identity(tensor)
    return tensor


def reset_peak_memory() -> None:
    """Start the device's peak-memory count afresh (where the backend keeps one)."""
    backend = backend_name()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_logical_devices("GPU"):
                tf.config.experimental.reset_memory_stats("GPU:0")
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
    except (RuntimeError, ValueError):
        pass


def device_peak_memory(kind: str) -> tuple[int | None, str | None]:
    """Peak bytes the backend allocated on the GPU since reset_peak_memory(), or (None, why)."""
    if kind != "gpu":
        return None, "the CPU's memory is the host's (host_peak_bytes)"
    backend = backend_name()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return int(tf.config.experimental.get_memory_info("GPU:0")["peak"]), None
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return int(torch.cuda.max_memory_allocated()), None
            return None, "PyTorch keeps no peak-memory count on MPS"
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            return int(stats["peak_bytes_in_use"]), None
        return None, "JAX reports no peak memory for this device"
    except (RuntimeError, ValueError, KeyError) as e:
        return None, f"{backend} reports no peak memory here ({e})"


def host_peak_memory() -> int:
    """Peak resident memory of this process in bytes (the whole process, since it started)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux
