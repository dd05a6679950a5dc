"""A run the OS kills outright (SIGKILL: the OOM killer, kill -9) keeps what it measured: its
journal of steps becomes an interrupted result at the next segbench command
(segbench/measure/run/journal.py), on the fake trainer and the real command line."""

import json
import os
import signal
import time

from cli_helpers import cached_data, fake, segbench, start

from segbench.measure.run.journal import FLUSH_S
from segbench.results.result import load_result

RUN = ["run", "--preset", "smoke", "--steps", "500", "--out", "res", "--no-peak"]


def _journal_with_timed_steps(folder, timeout=FLUSH_S + 30):
    """The journal's path, once it holds a timed step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in folder.glob("run-*.jsonl"):
            if '"phase": "timed"' in path.read_text():
                return path
        time.sleep(0.2)
    raise AssertionError(f"no timed step journalled in {folder}")


def test_a_killed_run_becomes_an_interrupted_result_at_the_next_command(tmp_path, triangles_dir):
    cache = cached_data(tmp_path, triangles_dir)
    run = start(*RUN, cwd=tmp_path, env=fake(sleep_s=0.05, step_ms=[80.0]))
    try:
        journal = _journal_with_timed_steps(cache / "journal")
        os.kill(run.pid, signal.SIGKILL)
        run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == -signal.SIGKILL
    assert not list((tmp_path / "res").glob("*.json"))  # nothing a handler could write
    journalled = sum('"phase": "timed"' in line for line in journal.read_text().splitlines())
    with journal.open("a") as f:  # a line the kill cut short: skipped, the rest kept
        f.write('{"step": {"phase": "timed", "ind')

    # Any next command, here one that has nothing to do with the run: one line, then its work.
    later = segbench("compare", "nothing.json", cwd=tmp_path)
    assert later.returncode == 2  # the command itself, as ever
    (saved,) = (tmp_path / "res").glob("segbench-smoke-cpu-*.json")
    note = later.stderr.strip().splitlines()[0]
    assert note.startswith("note: a run started on ") and note.endswith(
        f"was killed (the OOM killer or kill -9) after {journalled} timed step(s): its "
        f"interrupted result is {(tmp_path / 'res' / saved.name).absolute()}"
    )
    assert not journal.exists()
    result = load_result(saved)
    assert (result.status, result.interrupted_by) == ("interrupted", "killed")
    assert result.summary.steps == journalled and result.summary.median_ms == 80.0
    assert result.model.parameters == 20_886_706 and result.data.train_images == 500
    shown = segbench("show", str(saved), cwd=tmp_path)
    assert shown.returncode == 0 and "recovered from its journal" in shown.stdout
    again = segbench("compare", str(saved), str(saved), "--no-references", cwd=tmp_path)
    assert again.returncode == 0 and "note: a run" not in again.stderr  # found once


def test_a_running_runs_journal_is_left_alone_and_an_ended_one_is_removed(tmp_path, triangles_dir):
    cache = cached_data(tmp_path, triangles_dir)
    run = start(*RUN, cwd=tmp_path, env=fake(sleep_s=0.05))
    try:
        journal = _journal_with_timed_steps(cache / "journal")
        other = segbench("compare", "nothing.json", cwd=tmp_path)
        assert "note:" not in other.stderr and journal.exists()  # its run is still running
        run.send_signal(signal.SIGTERM)  # an end segbench sees: the partial result as ever
        run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 143
    assert not journal.exists()
    (saved,) = (tmp_path / "res").glob("*.json")
    assert load_result(saved).interrupted_by == "SIGTERM"


def test_a_journal_without_timed_steps_or_unreadable_is_removed_with_no_result(tmp_path):
    folder = tmp_path / "cache" / "journal"
    folder.mkdir(parents=True)
    header = {"journal": 1, "pid": 2**22 + 7, "process_started": 0.0, "out": str(tmp_path)}
    (folder / "run-20261207T000000Z-1.jsonl").write_text("{not json\n")
    (folder / "run-20261207T000000Z-2.jsonl").write_text(json.dumps(header) + "\n")
    done = segbench("compare", "nothing.json", cwd=tmp_path)
    notes = [line for line in done.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "cannot be read" in notes[0]
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob("*.json"))
