"""The folders as layers: a module imports only from layers below its own (lazy imports inside
functions and imports by string count too). The imports that still run back up are listed by
name below; a new one fails, and one that is gone must leave the list (docs/development.md)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "segbench"

# Top to bottom; a module may import from its own folder and from any folder below it.
LAYERS = (
    ("cli", "__main__"),
    ("report",),
    ("measure",),
    ("doctor",),
    ("results",),
    ("benchmark",),
    ("package_data",),
    ("atomic", "cache", "errors", "__init__"),
)

# The imports that run back up today (importer, imported), each to be removed by moving the
# record types to a layer of their own (issue: the records layer). Never add to this list.
KNOWN_BACK_IMPORTS = {
    ("segbench.benchmark.config", "segbench.measure.backend"),
    ("segbench.benchmark.config", "segbench.measure.generation"),
    ("segbench.benchmark.config", "segbench.measure.parallel.distribution"),
    ("segbench.benchmark.config", "segbench.results.schema"),
    ("segbench.doctor.cluster", "segbench.measure.parallel.distribution"),
    ("segbench.doctor.cluster", "segbench.measure.parallel.peers"),
    ("segbench.doctor.gather", "segbench.measure"),
    ("segbench.doctor.gather", "segbench.measure.backend"),
    ("segbench.doctor.gather", "segbench.measure.parallel.distribution"),
    ("segbench.doctor.gather", "segbench.measure.parallel.peers"),
    ("segbench.doctor.hardware", "segbench.measure"),
    ("segbench.doctor.software", "segbench.measure.settings"),
    ("segbench.package_data", "segbench.doctor.metal_pairs"),
    ("segbench.package_data", "segbench.results.result"),
    ("segbench.results.caveats", "segbench.doctor.types"),
    ("segbench.results.caveats", "segbench.measure.numerics"),
    ("segbench.results.environment", "segbench.doctor.cgroup"),
    ("segbench.results.environment", "segbench.measure"),
    ("segbench.results.result", "segbench.doctor.types"),
    ("segbench.results.result", "segbench.measure.backend"),
    ("segbench.results.result", "segbench.measure.numerics"),
    ("segbench.results.result", "segbench.measure.parallel.distribution"),
    ("segbench.results.result", "segbench.measure.peak"),
    ("segbench.results.result", "segbench.measure.profile.record"),
    ("segbench.results.result", "segbench.measure.run.runner"),
    ("segbench.results.result", "segbench.measure.telemetry"),
    ("segbench.results.stats", "segbench.measure.run.runner"),
    ("segbench.results.tune_record", "segbench.measure.profile.record"),
}


def _folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _level(folder: str) -> int:
    for level, names in enumerate(LAYERS):
        if folder in names:
            return level
    raise AssertionError(f"segbench/{folder} is in no layer: add it to LAYERS")


def _imports(tree: ast.AST) -> list[str]:
    """Every segbench module `tree` imports: at the top, inside functions, or by string
    (importlib.import_module("segbench.…"))."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "segbench":
                found += [f"segbench.{a.name}" for a in node.names]
            elif node.module.startswith("segbench."):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "segbench"]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).startswith("segbench")
        ):
            found.append(node.args[0].value)
    return found


def back_imports() -> set[tuple[str, str]]:
    """(importer, imported) for every import into a folder above the importer's layer."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for imported in _imports(ast.parse(path.read_text())):
            if imported.startswith("segbench.__version__"):
                imported = "segbench"
            here, there = _folder(module), _folder(imported)
            if here == there:
                continue
            if _level(there) < _level(here):
                found.add((module, imported))
    return found


def test_no_import_runs_back_up_but_the_known_ones():
    found = back_imports()
    new = sorted(found - KNOWN_BACK_IMPORTS)
    assert not new, f"imports that run back up a layer (move the code down instead): {new}"
    gone = sorted(KNOWN_BACK_IMPORTS - found)
    assert not gone, f"no longer imported: remove from KNOWN_BACK_IMPORTS: {gone}"


def test_the_layer_check_sees_lazy_and_string_imports():
    tree = ast.parse(
        "def f():\n    from segbench.cli import app\n"
        "import importlib\nimportlib.import_module('segbench.report.png')\n"
    )
    assert _imports(tree) == ["segbench.cli", "segbench.report.png"]
