"""The README and docs/ stay true to the code: generated references current, every command line
valid against the CLI, every link resolving, every figure traced to a committed result."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from segbench.cli import EXIT_CODES, app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), DOCS / "results" / "README.md"]
IMAGES = {"segbench-cpu", "segbench-cuda"}  # their entry point is segbench
SHELLS = ("sh", "console", "bash", "shell")
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}
GROUP = typer.main.get_command(app)


def script(name: str):
    """docs/NAME.py as a module."""
    sys.path.insert(0, str(DOCS))
    try:
        spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(DOCS))


def without_code(text: str) -> str:
    """Markdown text without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def shell_lines(text: str) -> list[str]:
    """Every command line of the shell blocks, continuation lines joined, prompts dropped."""
    lines = []
    for block in re.findall(rf"^```(?:{'|'.join(SHELLS)})\n(.*?)^```", text, flags=re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def inline_commands(text: str) -> list[str]:
    """Inline code that is a command line with an option, placeholders (…, [ ], < >) aside."""
    spans = re.findall(r"`([^`\n]+)`", without_code(text))
    return [
        s.replace("\\|", "|")
        for s in spans
        if " --" in s
        and re.search(r"(^|[\s/])segbench(-cpu|-cuda)?(\s|$)", s)
        and not re.search(r"[…\[<{]|\\\|", s)
    ]


def invocations(line: str) -> list[list[str]]:
    """The arguments of each `segbench` (or image) invocation in a shell line."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    tokens = list(lexer)
    found, segment = [], []
    for token in [*tokens, ";"]:
        if token in SEPARATORS:
            for i, word in enumerate(segment):
                image = word in IMAGES and segment[i - 1] not in ("-t", "--tag")
                if word == "segbench" or word.endswith("/segbench") or image:
                    found.append(segment[i + 1 :])
                    break
            segment = []
        else:
            segment.append(token)
    return found


def problems(arguments: list[str]) -> list[str]:
    """What is wrong with `segbench ARGUMENTS` by the CLI's own definition: an unknown command,
    option or choice, or a wrong number of arguments."""
    if not arguments or arguments[0] in ("--version", "--help") or arguments[0].isupper():
        return []  # COMMAND: a placeholder
    name, rest = arguments[0], arguments[1:]
    if name not in GROUP.commands:
        return [f"no command {name!r}"]
    command = GROUP.commands[name]
    options = {o: p for p in command.params if p.param_type_name == "option" for o in p.opts}
    options |= {o: p for p in command.params for o in getattr(p, "secondary_opts", [])}
    found, positional, i = [], [], 0
    while i < len(rest):
        word = rest[i]
        if word == "--" and (command.context_settings or {}).get("allow_extra_args"):
            forwarded = rest[i + 1 :]
            return (
                found
                + problems(forwarded)
                + ([] if forwarded[:1] == ["run"] else [f"{name} -- must forward `run`"])
            )
        if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            key, equals, value = word.partition("=")
            if key == "--help":
                i += 1
                continue
            if key not in options:
                found.append(f"segbench {name} has no option {key}")
            elif not options[key].is_flag:
                if not equals:
                    i += 1
                    value = rest[i] if i < len(rest) else ""
                choices = options[key].type_descriptor.choices
                allowed = [getattr(c, "value", c) for c in choices or ()]
                if allowed and value not in allowed and not value.startswith("$"):
                    found.append(f"{key} {value!r} is not one of {allowed}")
        else:
            positional.append(word)
        i += 1
    arguments_of = [p for p in command.params if p.param_type_name == "argument"]
    if not arguments_of and positional:
        found.append(f"segbench {name} takes no arguments, given {positional}")
    elif arguments_of and all(p.nargs == 1 for p in arguments_of):
        if len(positional) != len(arguments_of):
            found.append(f"segbench {name} takes {len(arguments_of)} argument(s): {positional}")
    elif arguments_of and not positional:
        found.append(f"segbench {name} needs at least one argument")
    return found


def recipes() -> set[str]:
    text = (ROOT / "justfile").read_text()
    return set(re.findall(r"^([a-z][\w-]*)(?: [^:=\n]*)?:(?!=)", text, flags=re.M))


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", without_code(path.read_text()), flags=re.M)
    return {slug(h) for h in headings}


# --- generated, never hand-kept ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["generate", "figures"])
def test_generated_docs_equal_a_fresh_generation(name):
    outputs = script(name).outputs()
    stale = [str(p.relative_to(ROOT)) for p, text in outputs.items() if p.read_text() != text]
    assert not stale, f"stale: {', '.join(stale)}: run `just docs` (docs/{name}.py)"


def test_the_references_cover_every_command_option_and_field():
    cli = (DOCS / "cli.md").read_text()
    for name, command in GROUP.commands.items():
        assert f"## segbench {name}\n" in cli
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                assert f"`{param.opts[0]}`" in cli, (name, param.opts)
    fields = (DOCS / "result-file.md").read_text()
    for field in ("median_ci95_ms", "j_per_image", "achieved_pct_of_measured", "flops_not_counted"):
        assert f"| `{field}` |" in fields


def test_every_result_field_has_a_meaning():
    generate = script("generate")
    import json

    schema = json.loads((ROOT / "segbench" / "results" / "result.schema.json").read_text())
    missing = [f"{o}.{f}" for (o, f), text in generate.meanings(schema).items() if not text]
    assert not missing, (
        f"no meaning for {missing}: add a comment on the field's line in its dataclass, or an "
        "entry in MEANINGS in docs/generate.py"
    )


def test_units_come_from_field_names():
    unit = script("generate").unit
    assert [unit(n) for n in ("median_ms", "at_s", "host_peak_bytes", "j_per_image")] == [
        "ms",
        "s",
        "bytes",
        "J/image",
    ]
    assert unit("ms_per_image") == "ms/image" and unit("images_per_s_per_replica") == "images/s"
    assert unit("seed") == ""


def test_exit_code_table_lists_every_code_the_cli_exits_with():
    codes = {code for _, code in EXIT_CODES} | {0}
    running = (DOCS / "running.md").read_text().split("## Errors and exit codes", 1)[1]
    table = running.split("\n\n", 2)[2]
    assert set(map(int, re.findall(r"^\| (\d+) \|", table, flags=re.M))) == codes
    readme = (ROOT / "README.md").read_text().split("## Errors and exit codes", 1)[1]
    assert set(map(int, re.findall(r"^\| (\d+) \|", readme, flags=re.M))) == codes


def test_every_doctor_check_is_in_the_doctor_page():
    source = "".join(p.read_text() for p in (ROOT / "segbench" / "doctor").glob("*.py"))
    ids = set(re.findall(r'Check\(\s*"([a-z-]+)"', source)) | {"tensorflow", "keras"}
    page = (DOCS / "doctor.md").read_text().split("## The checks", 1)[1].split("\n## ", 1)[0]
    names = " ".join(re.findall(r"^\| ([^|]+) \|", page, flags=re.M))
    documented = set(re.findall(r"`([a-z-]+)`", names))
    assert ids <= documented, f"checks missing from docs/doctor.md: {sorted(ids - documented)}"


def test_figures_name_machine_command_and_commit_of_every_committed_result():
    figures = (DOCS / "figures.md").read_text()
    for path in sorted((DOCS / "results").glob("*.json")):
        row = next(line for line in figures.splitlines() if line.startswith(f"| [{path.name}]"))
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        machine, command, commit = cells[1], cells[3], cells[4]
        assert "logical core" in machine and command.startswith("`segbench run --preset ")
        assert re.fullmatch(r"`[0-9a-f]{7}`|not recorded", commit), commit


def test_the_newest_result_of_a_preset_is_picked():
    figures = script("figures")
    entries = figures.load()
    quick = figures.newest(entries, "quick", "cpu")
    plain = [
        e
        for e in entries
        if e.result.config.preset == "quick" and e.result.device.kind == "cpu" and e.plain
    ]
    assert quick is not None and quick.started == max(e.started for e in plain)


# --- every command line is one the CLI accepts -------------------------------------------------


def test_the_command_checker_catches_a_wrong_option_choice_and_argument():
    assert problems(["run", "--preset", "quick", "--no-xla", "--batchnorm=fused"]) == []
    assert problems(["launch", "--workers", "2", "--", "run", "--preset", "smoke"]) == []
    assert problems(["run", "--bogus"]) == ["segbench run has no option --bogus"]
    assert problems(["run", "--preset", "huge"]) == [
        "--preset 'huge' is not one of ['smoke', 'quick', 'article']"
    ]
    assert problems(["show"]) == ["segbench show takes 1 argument(s): []"]
    assert problems(["plot", "a.json", "-o", "a.png"]) == []
    assert problems(["launch", "--", "compare", "a.json"]) == ["launch -- must forward `run`"]
    assert invocations('docker run --rm -v "$PWD/r:/r" segbench-cpu run --preset smoke') == [
        ["run", "--preset", "smoke"]
    ]
    assert invocations("docker build -t segbench-cpu .") == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_segbench_command_lines_use_only_commands_and_options_that_exist(page):
    text = page.read_text()
    found = []
    for line in shell_lines(text) + inline_commands(text):
        for arguments in invocations(line):
            found += [f"{line!r}: {p}" for p in problems(arguments)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_just_recipes_named_exist(page):
    known = recipes()
    text = page.read_text()
    code = shell_lines(text) + re.findall(r"`([^`\n]+)`", without_code(text))
    named = re.findall(r"(?:^|\s)just ([a-z][\w-]*)(?![\w*-])", "\n".join(code), flags=re.M)
    assert set(named) <= known, f"no such just recipe: {sorted(set(named) - known)}"


def test_the_examples_that_can_run_here_run():
    """`segbench show` and `compare` of committed results, as the pages write them."""
    ran = 0
    for page in PAGES:
        for line in shell_lines(page.read_text()):
            for arguments in invocations(line):
                files = [a for a in arguments[1:] if not a.startswith("-")]
                runnable = arguments[:1] in (["show"], ["compare"]) and "--plot" not in arguments
                if runnable and files and all((ROOT / f).is_file() for f in files):
                    done = subprocess.run(
                        [sys.executable, "-m", "segbench", *arguments],
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                    )
                    assert done.returncode == 0, f"{line}: {done.stderr}"
                    ran += 1
    assert ran >= 2


# --- links and size ----------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_to_files_and_headings(page):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", without_code(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_readme_is_short_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    linked = set(re.findall(r"\]\((docs/[^)#\s]+)", readme))
    pages = {str(p.relative_to(ROOT)) for p in DOCS.glob("*.md")} | {"docs/results/README.md"}
    assert pages <= linked, f"docs pages not linked from the README: {sorted(pages - linked)}"


def test_readme_answers_the_newcomers_questions_in_one_click():
    readme = (ROOT / "README.md").read_text()
    install = readme.split("## Install and run", 1)[1].split("\n## ", 1)[0]
    assert "just bench-mac" in install and "docker run --rm --gpus all" in install
    assert "segbench-cuda" in install
    assert "## Compare two machines" in readme and "segbench compare" in readme
    assert "](docs/result-file.md)" in readme and "## Errors and exit codes" in readme
