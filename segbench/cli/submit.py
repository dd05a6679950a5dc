"""`segbench submit`: a result file checked, then copied into the community catalogue under a
name that never collides, with the git commands that propose it by pull request."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated

import typer

from segbench.cli.console import note, print_path, stdout
from segbench.errors import BadInput, Unavailable


def submit_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A result file (segbench run).")],
    catalogue: Annotated[
        Path,
        typer.Option(metavar="FOLDER", help="The catalogue: community/ of a segbench checkout."),
    ] = Path("community"),
) -> None:
    """Check a result file (the report's plausibility checks and the privacy rules), copy it
    to community/<device>/<date>-<short digest>.json (never replacing a file) and print the
    git commands that propose it by pull request."""
    from segbench.atomic import write_text_new
    from segbench.results.catalogue import catalogue_name, catalogued_runs, device_folder
    from segbench.results.plausibility import check_files
    from segbench.results.privacy import private_words
    from segbench.results.result import read_json

    if catalogue.exists() and not catalogue.is_dir():
        raise BadInput(f"--catalogue {catalogue}: not a folder; name community/ of a checkout")
    checked = check_files([file], catalogued_runs(catalogue))[0]
    if checked.findings:
        reasons = "; ".join(f"{f.check}: {f.reason}" for f in checked.findings)
        raise BadInput(f"{file}: not submitted, it failed a check ({reasons})")
    read_json(file)  # loads: the same bytes are copied
    raw = file.read_text(encoding="utf-8-sig")
    # The text as JSON reads it too: "\u002froot" is /root once parsed.
    found = private_words(raw) or private_words(json.dumps(read_json(file), ensure_ascii=False))
    if found:
        raise BadInput(
            f"{file}: names {', '.join(found)}; a public file may not: remove them from the "
            "file (or run again with this segbench, which writes them as ~, <user>, <host>)"
        )
    result = checked.result
    name = Path(catalogue_name(result))
    try:
        written = write_text_new(catalogue / device_folder(result), name.stem, ".json", raw)
    except OSError as e:
        raise Unavailable(
            f"--catalogue {catalogue}: cannot write the file ({e.strerror or e}); "
            "choose a writable checkout"
        ) from None
    print_path(stdout, "added", written)
    branch = f"result-{name.stem}"
    shown = shlex.quote(str(written))
    note("propose it by pull request (from your fork of segbench):")
    for line in (
        f"git switch -c {branch}",
        f"git add {shown}",
        f"git commit -m {shlex.quote(f'community: {device_folder(result)} {name.stem}')}",
        f"git push -u origin {branch}",
        "then open the pull request that git push names",
    ):
        stdout.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
