"""TensorFlow × tensorflow-metal pairs checked without a Mac: do the plugin's symbols resolve?

tensorflow-metal's `libmetal_plugin.dylib` binds TensorFlow's symbols (the C API, TF_*/TFE_*/SE_*/
TSL_*, and C++ ones such as tsl::internal::LogMessage) by flat-namespace lookup or through
@rpath/_pywrap_tensorflow_internal.so: when TensorFlow loads it, each must be exported by a
TensorFlow library already loaded (libtensorflow_framework, libtensorflow_cc,
_pywrap_tensorflow_internal, and 2.20's lib_pywrap_tensorflow_common). A missing one is the
"Symbol not found … libmetal_plugin.dylib" users see. Both wheels download for macOS
arm64 from PyPI on any machine, and lief reads their Mach-O imports and exports, so each pair is
checked here; the verdicts land in envs/metal-pairs.json, the evidence behind the "loads"/"fails"
rows of segbench/doctor/metal_pairs.py (a test holds the two together).

    uv run --with 'lief>=0.16' --with pip python envs/metal_pairs.py            # the default matrix
    uv run --with 'lief>=0.16' --with pip python envs/metal_pairs.py 2.19.1:1.2.0 2.20.0:1.2.0
    uv run --with 'lief>=0.16' --with pip python envs/metal_pairs.py --merge 2.19.1:1.3.0

The default matrix is TENSORFLOW × every tensorflow-metal release that PyPI lists with a macOS
arm64 wheel (read from PyPI at run time and recorded in the evidence, so a test notices a
release the table lacks). About 250 MB a TensorFlow wheel is downloaded (cached in
$SEGBENCH_CACHE/metal-wheels) and parsed in ~20 s; pairs named on the command line are printed,
and with --merge their rows replace or join those of the evidence; the default matrix rewrites
it. "loads" means only that the plugin's symbols resolve: whether the pair then trains correctly
is for a Mac to show.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVIDENCE = ROOT / "envs" / "metal-pairs.json"
# TensorFlow's C API and C++ (mangled) names; Mach-O names carry a leading underscore. Others
# bound by flat lookup (objc_msgSend) come from macOS itself.
TENSORFLOW_PREFIXES = ("_TF_", "_TFE_", "_SE_", "_TSL_", "__Z")
FLAT_LOOKUP = -2  # BIND_SPECIAL_DYLIB_FLAT_LOOKUP
# The libraries of a TensorFlow wheel that are loaded before the plugin.
TF_LIBRARIES = (
    "tensorflow/libtensorflow_framework.2.dylib",
    "tensorflow/libtensorflow_cc.2.dylib",
    "tensorflow/python/_pywrap_tensorflow_internal.so",
    "tensorflow/python/lib_pywrap_tensorflow_common.dylib",  # 2.20+
)
PLUGIN = "tensorflow-plugins/libmetal_plugin.dylib"
# tensorflow ≤ 2.14 on macOS arm64 is a shim over tensorflow-macos, which holds the libraries.
MACOS_SHIM_UNTIL = (2, 14)
TENSORFLOW = (
    *("2.12.0", "2.13.1", "2.14.1", "2.15.1", "2.16.2"),
    *("2.17.1", "2.18.1", "2.19.1", "2.20.0", "2.21.0"),
)
SIMPLE_INDEX = "https://pypi.org/simple/tensorflow-metal/"


def missing_symbols(plugin_imports: set[str], tensorflow_exports: set[str]) -> list[str]:
    """The plugin's imports of TensorFlow symbols that no TensorFlow library exports, sorted."""
    wanted = {name for name in plugin_imports if name.startswith(TENSORFLOW_PREFIXES)}
    return sorted(wanted - tensorflow_exports)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def macos_arm64_releases(index: dict) -> list[str]:
    """The releases in a PyPI simple-index JSON answer that have a macOS arm64 wheel, oldest
    first (yanked files left out)."""
    found = set()
    for file in index["files"]:
        name = file["filename"]
        if name.endswith(".whl") and "macosx" in name and "arm64" in name and not file["yanked"]:
            found.add(name.split("-")[1])
    return sorted(found, key=_version_key)


def pypi_releases() -> list[str]:
    """Every tensorflow-metal release on PyPI with a macOS arm64 wheel (PEP 691 JSON index)."""
    request = urllib.request.Request(
        SIMPLE_INDEX, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return macos_arm64_releases(json.load(answer))


def distribution(tensorflow: str) -> str:
    major_minor = tuple(int(p) for p in tensorflow.split(".")[:2])
    return "tensorflow-macos" if major_minor <= MACOS_SHIM_UNTIL else "tensorflow"


def download(name: str, version: str, cache: Path) -> Path:
    """The macOS arm64 wheel of name==version (any CPython it has), from the cache or PyPI."""
    found = sorted(cache.glob(f"{name.replace('-', '_')}-{version}-*macosx*arm64.whl"))
    if found:
        return found[0]
    for python in ("3.11", "3.10", "3.9", "3.8"):  # tensorflow-metal 0.1–0.4: cp38/cp39 only
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--platform", "macosx_12_0_arm64", "--python-version", python,
            "--dest", str(cache), f"{name}=={version}",
        ]  # fmt: skip
        if subprocess.run(command, capture_output=True, check=False).returncode == 0:
            return download(name, version, cache)
    raise SystemExit(f"no macOS arm64 wheel of {name}=={version} on PyPI")


def _exports(wheel: Path) -> set[str]:
    """Every symbol the TensorFlow libraries of a wheel export."""
    import lief  # the maintainer's tool: uv run --with lief (module docstring)

    names: set[str] = set()
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as scratch:
        for member in TF_LIBRARIES:
            if member in archive.namelist():
                binary = lief.parse(archive.extract(member, scratch))  # kept alive while read
                names.update(symbol.name for symbol in binary.exported_symbols)
                os.unlink(Path(scratch) / member)
    return names


def _imports(wheel: Path) -> set[str]:
    """The plugin's imports TensorFlow must provide: bound by flat lookup or to a TF library."""
    import lief

    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as scratch:
        # 0.1–0.4 keep it under tensorflow_metal-<version>.data/purelib/
        member = next(n for n in archive.namelist() if n.endswith(PLUGIN))
        binary = lief.parse(archive.extract(member, scratch))
        loaded = [lib.name for lib in binary.libraries if "ID_DYLIB" not in str(lib.command)]
        tensorflow = {i + 1 for i, name in enumerate(loaded) if "tensorflow" in name}
        names = set()
        for symbol in binary.imported_symbols:
            binding = symbol.binding_info
            ordinal = binding.library_ordinal if binding is not None else None
            if ordinal == FLAT_LOOKUP or ordinal in tensorflow:
                names.add(symbol.name)
    return names


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(pairs: list[tuple[str, str]], cache: Path) -> list[dict]:
    exports: dict[str, set[str]] = {}
    imports: dict[str, set[str]] = {}
    wheels: dict[tuple[str, str], Path] = {}
    rows = []
    for tensorflow, metal in pairs:
        tf_name = distribution(tensorflow)
        if tensorflow not in exports:
            wheels[tf_name, tensorflow] = download(tf_name, tensorflow, cache)
            exports[tensorflow] = _exports(wheels[tf_name, tensorflow])
        if metal not in imports:
            wheels["tensorflow-metal", metal] = download("tensorflow-metal", metal, cache)
            imports[metal] = _imports(wheels["tensorflow-metal", metal])
        missing = missing_symbols(imports[metal], exports[tensorflow])
        rows.append(
            {
                "tensorflow": f"{tf_name} {tensorflow}",
                "tensorflow_metal": metal,
                "verdict": "fails" if missing else "loads",
                "missing": missing,
                "wheels": {
                    wheels[tf_name, tensorflow].name: sha256(wheels[tf_name, tensorflow]),
                    wheels["tensorflow-metal", metal].name: sha256(
                        wheels["tensorflow-metal", metal]
                    ),
                },
            }
        )
        print(f"{tf_name} {tensorflow:8} × tensorflow-metal {metal:6} {rows[-1]['verdict']:5} "
              + (f"missing {len(missing)}: {', '.join(missing[:3])}" if missing else ""),
              flush=True)  # fmt: skip
    return rows


def merged(old: list[dict], new: list[dict]) -> list[dict]:
    """The evidence rows `old` with `new` replacing rows of the same pair or joining them,
    sorted by TensorFlow, then plugin release."""
    rows = {(r["tensorflow"], r["tensorflow_metal"]): r for r in old}
    rows.update({(r["tensorflow"], r["tensorflow_metal"]): r for r in new})

    def key(row: dict) -> tuple:
        return _version_key(row["tensorflow"].split()[-1]), _version_key(row["tensorflow_metal"])

    return sorted(rows.values(), key=key)


def main(argv: list[str]) -> int:
    merge = "--merge" in argv
    named = [arg for arg in argv if arg != "--merge"]
    releases = pypi_releases()
    if named:
        pairs = [tuple(arg.split(":", 1)) for arg in named]
    else:
        pairs = [(tf, metal) for tf in TENSORFLOW for metal in releases]
    cache = Path(os.environ.get("SEGBENCH_CACHE", Path.home() / ".cache" / "segbench"))
    cache = cache / "metal-wheels"
    cache.mkdir(parents=True, exist_ok=True)
    rows = check(pairs, cache)
    if named and not merge:
        return 0
    if merge:
        old = json.loads(EVIDENCE.read_text())
        rows = merged(old["pairs"], rows)
    evidence = {
        "how": "uv run --with 'lief>=0.16' --with pip python envs/metal_pairs.py"
        + (" (then --merge " + " ".join(named) + ")" if merge else ""),
        "checked": datetime.date.today().isoformat(),
        "symbols": "imports of " + PLUGIN + " bound by flat lookup or to a TensorFlow library,"
        + " named " + " ".join(TENSORFLOW_PREFIXES) + "…, against the exports of "
        + ", ".join(TF_LIBRARIES),
        "tensorflow_metal_on_pypi": releases,  # with a macOS arm64 wheel, on the day checked
        "pairs": rows,
    }  # fmt: skip
    tmp = EVIDENCE.with_suffix(".tmp")
    tmp.write_text(json.dumps(evidence, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(EVIDENCE)
    print(f"wrote {EVIDENCE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
