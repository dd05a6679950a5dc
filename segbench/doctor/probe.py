"""Importing the frameworks in a child process before this one does.

A plugin built for another TensorFlow (`site-packages/tensorflow-plugins/*.so`, loaded at
`import tensorflow` on Linux as on macOS), a CUDA library that aborts, or a broken wheel can
kill the importing process with a traceback or a signal, before any check could speak. The
child takes that blow; doctor turns it into a FAIL row and `run` into one line. A child that
imported cleanly is remembered (in the cache, keyed by everything that decides what an import
loads), so repeated runs in one environment pay for it once.

`python -m segbench.doctor.probe_child BACKEND` is the child (`main` here): it announces each
import on stdout, then prints one JSON line with the versions and files it imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from segbench.atomic import write_text_atomic

PROBE_TIMEOUT_S = 300.0  # a first import after boot (CUDA initialising) can take minutes
MARK = "segbench-probe:"  # prefix of the child's lines on stdout
# Environment variables that decide what an import loads (and so what the cache must match).
_ENV_PREFIXES = ("TF_", "KERAS_", "CUDA", "LD_", "DYLD_", "PYTHON", "XLA_", "JAX_", "TORCH_")
_NAMES = ("tensorflow", "keras", "jax", "jaxlib", "torch", "tf_keras", "sitecustomize")
# Read when a strategy starts, not at import: each multi-worker task has its own.
_NOT_READ_AT_IMPORT = frozenset({"TF_CONFIG"})


@dataclass(frozen=True)
class Probe:
    """What the child found: each module's imported version and file, or how the import failed."""

    ok: bool
    imported: dict[str, dict[str, str]] = field(default_factory=dict)  # module → version, file
    failed_module: str | None = None  # the import that was running when the child died
    error: str | None = None  # one line: the exception, or the signal that killed it
    library: str | None = None  # the shared library named in the error
    owner: str | None = None  # "name version" of the distribution that installed `library`
    seconds: float = 0.0
    cached: bool = False
    # When no library is named: the plugin libraries this import loads, "path (owner)".
    plugins: tuple[str, ...] = ()

    @property
    def versions(self) -> dict[str, str]:
        """module → the version Python really imports (`module.__version__`)."""
        return {m: v["version"] for m, v in self.imported.items() if v.get("version")}


def modules_for(backend: str) -> list[str]:
    """The imports a run on `backend` makes, in order (TensorFlow first: it loads the plugins)."""
    if backend == "tensorflow":
        return ["tensorflow", "keras"]
    return ["keras", backend]


def probe(backend: str, timeout: float = PROBE_TIMEOUT_S) -> Probe:
    """Import `backend`'s frameworks in a child process; a remembered success when nothing that
    decides the import has changed since."""
    key = environment_key(backend)
    cached = _read_cache(key)
    if cached is not None:
        return cached
    found = _run_child(backend, timeout)
    if found.ok:
        _write_cache(key, found)
    return found


def _run_child(backend: str, timeout: float) -> Probe:
    env = {**os.environ, "KERAS_BACKEND": backend}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "segbench.doctor.probe_child", backend],
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
        return Probe(
            ok=False,
            failed_module=_last_started(out),
            error=f"the import did not finish in {timeout:.0f} s",
            seconds=time.monotonic() - started,
        )
    seconds = time.monotonic() - started
    return parse_child(done.returncode, done.stdout, done.stderr, seconds)


def parse_child(returncode: int, stdout: str, stderr: str, seconds: float = 0.0) -> Probe:
    """The Probe that a child's exit status and output describe."""
    for line in stdout.splitlines():
        if line.startswith(MARK + " {") and returncode == 0:
            return Probe(ok=True, imported=json.loads(line[len(MARK) :]), seconds=seconds)
    module = _last_started(stdout)
    stderr = _without_logs(stderr)
    library = _library(stderr)
    owner = owning_distribution(library) if library else None
    if returncode < 0:
        name = _signal_name(-returncode)
        detail = _symbol_line(stderr) or _last_error_line(stderr)
        error = f"crashed ({name})" + (f": {detail}" if detail else "")
    else:
        error = _symbol_line(stderr) or _last_error_line(stderr) or f"exit status {returncode}"
    return Probe(
        ok=False,
        failed_module=module,
        error=error,
        library=library,
        owner=owner,
        seconds=seconds,
        plugins=() if library else plugin_libraries(),
    )


# TensorFlow's and absl's log lines (written before logging starts, whatever the level).
_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |WARNING: All log messages)"
)


def _without_logs(stderr: str) -> str:
    return "\n".join(line for line in stderr.splitlines() if not _LOG_LINE.match(line))


def plugin_libraries() -> tuple[str, ...]:
    """Every library in a `tensorflow-plugins/` folder on the search path (what
    `import tensorflow` loads), as "path (installed by name version)" where a package owns it."""
    found = []
    searched = [*os.environ.get("PYTHONPATH", "").split(os.pathsep), *sys.path]  # the child's
    for entry in dict.fromkeys(p for p in searched if p):
        folder = Path(entry) / "tensorflow-plugins"
        if not folder.is_dir():
            continue
        for library in sorted(folder.iterdir()):
            if library.suffix in (".so", ".dylib"):
                owner = owning_distribution(str(library))
                found.append(f"{library}" + (f" (installed by {owner})" if owner else ""))
    return tuple(found)


def _last_started(stdout: str) -> str | None:
    lines = stdout.splitlines()
    started = [line.split()[-1] for line in lines if line.startswith(MARK + " import")]
    return started[-1] if started else None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


_SYMBOL = re.compile(r"(undefined symbol: \S+|Symbol not found: \S+)")
_LIBRARY = re.compile(r"(/[^\s:'\"()]+\.(?:so(?:\.[\d.]+)?|dylib))")


def _symbol_line(stderr: str) -> str | None:
    found = _SYMBOL.search(stderr)
    return found.group(1).rstrip(".,'\"") if found else None


def _last_error_line(stderr: str) -> str | None:
    """The exception line of a traceback (the last `Name: message` line), else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Abort\w*)\b", line):
            return line[:300]
    return lines[-1][:300] if lines else None


def _library(stderr: str) -> str | None:
    """The shared library an import error names: a plugin's first, else the first named."""
    found = _LIBRARY.findall(stderr)
    plugins = [path for path in found if "tensorflow-plugins" in path]
    return (plugins or found or [None])[0]


def owning_distribution(path: str) -> str | None:
    """ "name version" of the installed distribution whose files include `path`."""
    from importlib import metadata

    target = Path(path).resolve()
    for dist in metadata.distributions():
        for entry in dist.files or ():
            if entry.name == target.name and Path(dist.locate_file(entry)).resolve() == target:
                return f"{dist.metadata.get('Name')} {dist.version}"
    return None


def environment_key(backend: str) -> str:
    """A digest of what decides what `import` loads: the interpreter, the search path's
    packages (every name; installed distributions' records and importable files with their
    modification times and sizes), plugin libraries and the relevant variables.

    What an import itself writes (``__pycache__`` folders, which change a package folder's
    modification time) is left out, so the first import does not change the key."""
    parts: list[str] = [sys.executable, sys.version, backend]
    parts += sorted(
        f"{k}={v}"
        for k, v in os.environ.items()
        if k.startswith(_ENV_PREFIXES) and k not in _NOT_READ_AT_IMPORT
    )
    for entry in sys.path[1:] if sys.path and sys.path[0] in ("", os.getcwd()) else sys.path:
        parts.append(f"path {entry}")
        try:
            with os.scandir(entry or ".") as listing:
                for item in sorted(listing, key=lambda item: item.name):
                    parts += _entry(item)
        except OSError:
            continue
    # The current folder can shadow a framework or hold a sitecustomize.
    here = Path.cwd()
    parts += [f"cwd {p.name}" for p in here.iterdir() if p.stem in _NAMES] if here.is_dir() else []
    return hashlib.sha256("\n".join(parts).encode(errors="replace")).hexdigest()[:32]


# Files an import can load straight from a search-path folder; an installer rewrites them,
# an import never does.
_IMPORTABLE = (".py", ".pth", ".so", ".pyd", ".dylib", ".egg-link")
_INSTALL_RECORDS = (".dist-info", ".egg-info")


def _entry(item: os.DirEntry) -> list[str]:
    """One search-path entry's part of the key: a name, and a stamp where installs change it."""
    if item.name == "__pycache__":
        return []
    if item.is_dir():
        if item.name == "tensorflow-plugins":
            return [item.name, *_listing(Path(item.path))]
        if item.name.endswith(_INSTALL_RECORDS):  # written once per install, never by an import
            return [f"{item.name} {_stamp(Path(item.path))}"]
        return [item.name] if item.name.isidentifier() else []  # a package, or no import
    if item.name.endswith(_IMPORTABLE):
        return [f"{item.name} {_stamp(Path(item.path))}"]
    return []


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_mtime_ns} {stat.st_size}"


def _listing(folder: Path) -> list[str]:
    return sorted(
        f"plugin {p.name} {_stamp(p)}" for p in folder.iterdir() if p.name != "__pycache__"
    )


def _cache_dir() -> Path:
    from segbench.benchmark.triangles import cache_root

    return Path(os.environ.get("SEGBENCH_PROBE_CACHE") or cache_root() / "import-probe")


def _read_cache(key: str) -> Probe | None:
    try:
        data = json.loads((_cache_dir() / f"{key}.json").read_text())
        return Probe(ok=True, imported=data["imported"], seconds=data["seconds"], cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(key: str, found: Probe) -> None:
    try:
        folder = _cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        document = {k: v for k, v in asdict(found).items() if k in ("imported", "seconds")}
        write_text_atomic(folder / f"{key}.json", json.dumps(document))
    except OSError:
        pass  # no cache: the next run probes again


def main(backend: str) -> None:
    """The child: import each module, announcing it first, then print what was imported."""
    imported = {}
    for module in modules_for(backend):
        print(f"{MARK} import {module}", flush=True)
        loaded = __import__(module)
        imported[module] = {
            "version": str(getattr(loaded, "__version__", "")),
            "file": str(getattr(loaded, "__file__", "")),
        }
    print(f"{MARK} {json.dumps(imported)}", flush=True)
