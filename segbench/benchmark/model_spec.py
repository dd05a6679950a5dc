"""Loading the function a `--model SPEC` names: `package.module:function`,
`path/to/file.py:function` or the name of a reference model.

A module is imported as Python imports it, the current folder searched last; a relative file
path is read from the current folder. Every problem is a ModelError (BadInput, exit 2) whose
one-line message names the spec and what to change.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from segbench.errors import BadInput, raised_by_user_code

_MESSAGE_CHARS = 300


class ModelError(BadInput):
    """A --model that cannot be benchmarked (exit 2); the message names the spec and what to
    change."""


_REAL_EXIT = os._exit


class UserExit(BaseException):
    """The user's code called os._exit while segbench ran it (exit_guarded): named as the
    model's fault, never a silent exit 0."""

    def __init__(self, code: object) -> None:
        super().__init__(f"os._exit({code!r})")
        self.code = code


@contextmanager
def exit_guarded() -> Iterator[None]:
    """While the user's code runs, os._exit raises UserExit instead of ending the process."""

    def refused(code: object = 0) -> None:
        raise UserExit(code)

    os._exit = refused
    try:
        yield
    finally:
        os._exit = _REAL_EXIT


def load_model_function(spec: str) -> Callable[..., Any]:
    """The model-building function that SPEC names; ModelError when it cannot be loaded."""
    return resolve_spec(spec)[0]


def resolve_spec(spec: str) -> tuple[Callable[..., Any], Path | None]:
    """(function, source file) of SPEC."""
    target, sep, name = spec.rpartition(":")
    if not sep:
        from segbench.benchmark.reference_models import REFERENCE_MODELS

        if spec in REFERENCE_MODELS:
            target, name = "segbench.benchmark.reference_models", REFERENCE_MODELS[spec]
        else:
            known = ", ".join(REFERENCE_MODELS)
            raise spec_error(
                spec,
                "expected package.module:function or path/to/file.py:function "
                f"(or a reference model: {known})",
            )
    if not target or not name.isidentifier():
        raise spec_error(spec, "expected package.module:function or path/to/file.py:function")
    is_file = target.endswith(".py") or "/" in target or os.sep in target
    module = _import_file(spec, Path(target)) if is_file else _import_module(spec, target)
    function = getattr(module, name, None)
    if function is None:
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        listed = ", ".join(sorted(names)[:8]) or "none"
        raise spec_error(spec, f"{target} has no function {name!r} (its functions: {listed})")
    if not callable(function):
        raise spec_error(spec, f"{target}.{name} is a {type(function).__name__}, not a function")
    file = getattr(module, "__file__", None)
    return function, Path(file).resolve() if file else None


def _import_file(spec: str, path: Path) -> Any:
    path = path.expanduser()
    if not path.is_file():
        raise spec_error(spec, f"{path}: file not found (relative paths start at {Path.cwd()})")
    path = path.resolve()
    # A name per file, so two files called model.py do not replace each other.
    module_name = "segbench_own_model_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise spec_error(spec, f"{path}: not a Python file that can be imported")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    sys.path.insert(0, str(path.parent))  # the file may import modules next to it
    try:
        with exit_guarded():
            loader_spec.loader.exec_module(module)
    except (Exception, SystemExit, UserExit, KeyboardInterrupt) as e:
        del sys.modules[module_name]
        if isinstance(e, KeyboardInterrupt) and not raised_by_user_code(e):
            raise  # a Ctrl-C that arrived during the import
        raise spec_error(
            spec, f"importing {path} raised {type(e).__name__}: {first_line(e)}"
        ) from e
    finally:
        if str(path.parent) in sys.path:
            sys.path.remove(str(path.parent))
    return module


def _import_module(spec: str, target: str) -> Any:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:  # searched last, so a folder in the current directory cannot shadow a package
        sys.path.append(cwd)
    try:
        with exit_guarded():
            return importlib.import_module(target)
    except ModuleNotFoundError as e:
        if e.name and (target == e.name or target.startswith(e.name + ".")):
            raise spec_error(
                spec,
                f"no module named {e.name!r} (searched the Python path and {cwd}); "
                "for a file, give its path: path/to/file.py:function",
            ) from e
        raise spec_error(spec, f"importing {target} raised ModuleNotFoundError: {e}") from e
    except (Exception, SystemExit, UserExit, KeyboardInterrupt) as e:
        if isinstance(e, KeyboardInterrupt) and not raised_by_user_code(e):
            raise  # a Ctrl-C that arrived during the import
        raise spec_error(
            spec, f"importing {target} raised {type(e).__name__}: {first_line(e)}"
        ) from e
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def spec_error(spec: str, what: str) -> ModelError:
    """A ModelError whose message names the spec."""
    return ModelError(f"--model {spec}: {what}")


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message, cut to a readable length."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    text = text or "(no message)"
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"
