"""A tune session: successive halving over the planned settings (measure/tune.py), within a
time budget.

1. The default setting runs in full (the trial's --steps, with --profile): every speedup is
   measured against it.
2. Every other setting runs short (SHORT_FRACTION of the steps, at least two), grouped by
   backend so that each backend's worker (measure/tune_worker.py) imports its framework once.
   A short trial whose numerics deviate is kept as `deviates` (it can never win); one whose
   fastest step is slower than the slow end of the best full trial's 95 % CI cannot reach it
   and is `pruned`, with its short median and why. A short trial stops timing after a step
   STOP_EARLY× slower than that end, and one that takes SLOW_FACTOR× the default's time (a
   compile that never ends) is stopped; both are pruned.
3. Then the fastest setting so far at twice the batch, short too, when memory allows.
4. The survivors, fastest first, run in full (with --profile); each is checked against the best
   full trial again before it starts. Only a full trial can win: its median and CI come from its
   own steps, and its speedup over the default is the bootstrap CI of the ratio (stats.py).

Ctrl-C, SIGTERM or SIGHUP stop the session and keep what was tried. Computes; never prints.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from segbench.benchmark.config import PRESETS
from segbench.errors import BadInput, signal_name
from segbench.measure.processes import end_unnamed_children
from segbench.measure.tune import (
    Setting,
    conclude,
    device_skip,
    measured_trial,
    memory_skip,
    rank,
    run_command_line,
    trial_command,
    trial_of,
)
from segbench.measure.tune_worker import STOPPED, Worker, WorkerGone
from segbench.results.result import Result, load_result
from segbench.results.tune_record import (
    DEVIATES,
    FAILED,
    NOT_RUN,
    PRUNED,
    RAN,
    SKIPPED,
    TuneInfo,
    TuneTrial,
)

SHORT_FRACTION = 0.25  # a short trial's share of the full trial's timed steps
SLOW_FACTOR = 4.0  # a short trial taking this many times the default's time is stopped
SLOW_GRACE_S = 60.0  # … plus this (a compiled step's first trace takes longer)
STOP_EARLY = 1.5  # a short trial's timed step this many times the best's CI's slow end: stop
GRACE_S = 30.0  # a started trial may overrun the budget by this much (and half the budget)

# The events the command line shows: ("start"|"end", phase, number, total, setting, trial,
# timed steps); phase: "trial" (the default and the short trials), "in full" (the survivors).
Notify = Callable[[str, str, int, int, Setting, TuneTrial | None, int], None]
SHORT, FULL = "short", "full"


def _steps(n: int) -> str:
    return f"{n} timed step" + ("s" if n != 1 else "")


def short_steps(full: int) -> int:
    """The timed steps of a short trial: a quarter of the full trial's, at least two."""
    return min(full, max(2, math.ceil(full * SHORT_FRACTION)))


@dataclass
class Session:
    """A tune session's state while it runs (the command line renders its events)."""

    preset: str
    budget_s: float
    steps: int  # a full trial's timed steps
    warmup: int
    extra: list[str]  # options every trial gets (--device, …)
    work: Path  # the trials' result folders
    notify: Notify = lambda *a: None
    max_trials: int | None = None  # --trials: at most this many settings tried, the default too
    started: float = field(default_factory=time.monotonic)
    halted: str | None = None  # why no trial starts any more: a signal's name, or "budget"
    budget_hit: bool = False  # a trial was not run because it would overrun the budget
    settings: list[Setting] = field(default_factory=list)
    trials: list = field(default_factory=list)  # TuneTrial | None, one per setting
    results: dict[int, tuple[Result, Path]] = field(default_factory=dict)  # full trials'
    walls: dict[str, list[float]] = field(default_factory=lambda: {SHORT: [], FULL: []})
    workers: dict[str, Worker] = field(default_factory=dict)
    planned: int = 0

    def left_s(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)

    @property
    def short(self) -> int:
        return short_steps(self.steps)

    def run(self, planned: list[tuple[Setting, str | None]], available: int) -> TuneInfo:
        """Halving over `planned` (the default first) within the budget; Ctrl-C, SIGTERM or
        SIGHUP stop the session and keep what was tried."""
        self.settings = [s for s, _ in planned]
        self.trials = [None] * len(planned)
        self.planned = len(planned)
        try:
            self._halve(planned, available)
        except KeyboardInterrupt as stop:  # between two trials
            self.halted = signal_name(stop) or "SIGINT"
        finally:
            for worker in self.workers.values():
                worker.close()
        stopped_by = self.halted or ("budget" if self.budget_hit else None)
        why = "the budget was spent" if stopped_by == "budget" else "stopped"
        for index, trial in enumerate(self.trials):
            if trial is None:
                self.trials[index] = trial_of(
                    self.settings[index], NOT_RUN, self._command(index), why
                )
            elif trial.status == SHORT:  # could still win, never run in full
                self.trials[index] = replace(trial, status=PRUNED, reason=f"not run in full: {why}")
        default = self.results.get(0, (None, None))[0]
        return conclude(
            self.preset,
            self.budget_s,
            time.monotonic() - self.started,
            stopped_by,
            self.trials,
            self.extra,
            default.profile if default is not None else None,
        )

    # The rungs.

    def _halve(self, planned: list[tuple[Setting, str | None]], available: int) -> None:
        reasons = [reason for _, reason in planned]
        self._try(0, FULL, reasons[0], self._total(reasons))  # the default, in full
        default = self.results.get(0, (None, None))[0]
        for index in range(1, len(planned)):  # what cannot work on the default's device
            reason = reasons[index] or device_skip(self.settings[index], default)
            if reason is not None:
                self.trials[index] = trial_of(
                    self.settings[index], SKIPPED, self._command(index), reason
                )
        for index in self._by_backend(range(1, len(planned))):
            if self.trials[index] is None:
                self._try(index, SHORT, None, self._total(reasons))
        larger = self._larger_batch()
        if larger is not None:
            self.settings.append(larger)
            self.trials.append(None)
            reasons.append(None)
            preset = PRESETS[self.preset]
            on_gpu = default is not None and default.device.kind == "gpu"
            reason = memory_skip(larger, preset, available, on_gpu)
            self._try(len(self.settings) - 1, SHORT, reason, self._total(reasons))
        for index, trial in enumerate(self.trials):  # the best may be faster now
            pruned = (
                trial is not None and trial.status == SHORT and self._cannot_reach_the_best(trial)
            )
            if pruned:
                self.trials[index] = replace(trial, status=PRUNED, reason=pruned)
        waiting = [i for i, t in enumerate(self.trials) if t is not None and t.status == SHORT]
        waiting.sort(key=lambda i: self.trials[i].ms_per_image)
        place = 0
        for index in self._by_backend(waiting):
            if self.halted is not None:
                break
            pruned = self._cannot_reach_the_best(self.trials[index])
            if pruned:
                self.trials[index] = replace(self.trials[index], status=PRUNED, reason=pruned)
            elif self._estimate(FULL) > self.left_s():
                self.budget_hit = True
            else:
                self._run_trial(index, FULL, place, len(waiting), "in full")
                place += 1

    def _total(self, reasons: list[str | None]) -> int:
        """The settings that can still be tried (the count the progress shows): those not
        skipped or left out, and the larger batch while it is still to come; at most
        --trials."""
        open_ = sum(
            (t is None and r is None) or (t is not None and t.status not in (SKIPPED, NOT_RUN))
            for r, t in zip(reasons, self.trials, strict=True)
        )
        larger = 1 if len(self.settings) == self.planned and self.halted is None else 0
        return min(open_ + larger, self.max_trials or open_ + larger)

    def _by_backend(self, indices) -> list[int]:
        """`indices` in their order, grouped by backend: the worker alive now first, then the
        backends in the order they first appear (one framework import each)."""
        indices = list(indices)
        first: dict[str, int] = {}
        for i in indices:
            first.setdefault(self.settings[i].backend, len(first))
        alive = next((b for b, w in self.workers.items() if w.alive), None)
        return sorted(
            indices,
            key=lambda i: (self.settings[i].backend != alive, first[self.settings[i].backend]),
        )

    def _try(self, index: int, rung: str, reason: str | None, total: int) -> None:
        """Trial `index` in `rung`, or the reason it is skipped or not run."""
        setting = self.settings[index]
        if reason is not None:
            self.trials[index] = trial_of(setting, SKIPPED, self._command(index), reason)
            return
        tried = sum(t is not None and t.status not in (SKIPPED, NOT_RUN) for t in self.trials)
        if self.max_trials is not None and tried >= self.max_trials:
            why = f"--trials {self.max_trials}: that many trials ran"
            self.trials[index] = trial_of(setting, NOT_RUN, self._command(index), why)
            return
        if self.halted is not None:
            why = "the budget was spent" if self.halted == "budget" else "stopped"
            self.trials[index] = trial_of(setting, NOT_RUN, self._command(index), why)
            return
        if index > 0 and self._estimate(rung) + self._reserve() > self.left_s():
            self.budget_hit = True
            why = "the budget was spent"
            self.trials[index] = trial_of(setting, NOT_RUN, self._command(index), why)
            return
        self._run_trial(index, rung, tried, total, "trial")

    def _run_trial(self, index: int, rung: str, number: int, total: int, phase: str) -> None:
        setting = self.settings[index]
        steps = self.steps if rung == FULL else self.short
        self.notify("start", phase, number, total, setting, None, steps)
        short = self.trials[index]
        trial = self._trial(index, rung)
        if short is not None and self.halted is not None and trial.status not in (RAN, DEVIATES):
            trial = short  # its full run was stopped: the short steps stand (pruned, at the end)
        self.trials[index] = trial
        self.notify("end", phase, number, total, setting, trial, steps)

    # What is known.

    def _best(self) -> TuneTrial | None:
        kept = [t for t in self.trials if t is not None]
        ranked = rank(kept)
        return kept[ranked[0]] if ranked else None

    def _cannot_reach_the_best(self, short: TuneTrial) -> str | None:
        """Why a short trial cannot win: its fastest step is slower than the slow end of the
        best full trial's 95 % CI (None: it can still win)."""
        best = self._best()
        if best is None or not short.samples_ms_per_image:
            return None
        slow_end = self._slow_end(best)
        fastest = min(short.samples_ms_per_image)
        if fastest <= slow_end:
            return None
        n = len(short.samples_ms_per_image)
        steps = f"{n} short steps, the fastest" if n > 1 else "its first step stopped it,"
        return (
            f"{steps} {fastest:.4g} ms/image: slower than the best's 95 % CI (up to {slow_end:.4g})"
        )

    @staticmethod
    def _slow_end(best: TuneTrial) -> float:
        """The slow end of a full trial's 95 % CI, ms/image (its median where it has none)."""
        return (best.ci95_ms_per_image or [best.ms_per_image] * 2)[1]

    def _estimate(self, rung: str) -> float:
        """Seconds a trial of `rung` is expected to take: the median of those so far, else
        the default's scaled to the rung's steps."""
        if self.walls[rung]:
            return statistics.median(self.walls[rung])
        return self._default_as_short() if rung == SHORT else 0.0

    def _default_as_short(self) -> float:
        """The default's wall time scaled to a short trial's steps (0: not known)."""
        if not self.walls[FULL]:
            return 0.0
        scale = (self.short + self.warmup) / max(self.steps + self.warmup, 1)
        return self.walls[FULL][0] * scale

    def _reserve(self) -> float:
        """Time kept for a full trial once a short one can still win."""
        waiting = any(t is not None and t.status == SHORT for t in self.trials)
        return self._estimate(FULL) if waiting else 0.0

    def _larger_batch(self) -> Setting | None:
        """The fastest setting so far (short or full) at twice the batch (more images per
        step keep a GPU busier)."""
        measured = [
            (t.ms_per_image, i)
            for i, t in enumerate(self.trials)
            if t is not None and t.status in (RAN, SHORT) and t.ms_per_image
        ]
        if not measured or self.halted is not None:
            return None
        best = self.settings[min(measured)[1]]
        return replace(best, batch_size=2 * best.batch_size)

    def _command(self, index: int) -> str:
        """The trial's `segbench run` command line as a person would run it in full."""
        return run_command_line(trial_command(self.preset, self.settings[index], self.extra))

    # One trial.

    def _arguments(self, index: int, rung: str, folder: Path) -> list[str]:
        steps = self.steps if rung == FULL else self.short
        options = ["--steps", str(steps), "--warmup", str(self.warmup)]
        if rung == FULL or steps == self.steps:
            options.append("--profile")  # where the time goes, for the default and the winner
        else:
            options.append("--no-peak")  # the ceiling is for full trials' % of peak
        setting = self.settings[index]
        return [*trial_command(self.preset, setting, [*options, *self.extra]), "--out", str(folder)]

    def _trial(self, index: int, rung: str) -> TuneTrial:
        """Run trial `index` in its backend's worker; a trial that fails in a worker that ran
        others before is run again in a fresh one (what a fresh process would measure: an XLA
        compile needs memory an earlier trial's heap may still hold)."""
        worker = self.workers.get(self.settings[index].backend)
        reused = worker is not None and worker.alive and worker.served > 0
        trial = self._trial_once(index, rung, "")
        fits = self._estimate(rung) <= self.left_s()
        if trial.status == FAILED and reused and self.halted is None and fits:
            self.workers.pop(self.settings[index].backend).close()
            first = trial.reason
            trial = self._trial_once(index, rung, "-fresh")
            if trial.status == FAILED:
                trial = replace(
                    trial, reason=f"{trial.reason} (in a fresh worker too; first: {first})"
                )
        return trial

    def _trial_once(self, index: int, rung: str, suffix: str) -> TuneTrial:
        """Run trial `index` in its backend's worker; the trial from its result file."""
        setting = self.settings[index]
        command = self._command(index)
        folder = self.work / f"trial-{index + 1}-{rung}{suffix}"
        log = self.work / f"trial-{index + 1}-{rung}{suffix}.log"
        full = rung == FULL or self.short >= self.steps
        for backend, worker in list(self.workers.items()):  # one framework in memory at a time
            if backend != setting.backend:
                worker.close()
                del self.workers[backend]
        worker = self.workers.setdefault(setting.backend, Worker(setting.backend))
        budget_left = max(self.left_s(), 0.0) * 1.5 + GRACE_S
        known = self._default_as_short()
        slow = SLOW_FACTOR * known + SLOW_GRACE_S if not full and known else None
        started = time.monotonic()
        stopped_slow = False
        best = self._best() if not full else None
        # A short trial's first timed step far slower than the best's CI: no more steps.
        stop_above = STOP_EARLY * self._slow_end(best) if best is not None else None
        try:
            worker.send(self._arguments(index, rung, folder), log, stop_above)
        except KeyboardInterrupt as stop:  # while its worker was being started: it may run
            if worker.process is None:
                end_unnamed_children()
            worker.close()
            self.halted = signal_name(stop) or "SIGINT"
            return trial_of(setting, FAILED, command, "stopped before it started")
        except WorkerGone:
            worker.close()
            return trial_of(setting, FAILED, command, "its worker process ended at its start")
        try:
            code = worker.answer(min(budget_left, slow) if slow else budget_left)
            if code is None:  # past its time: stopped, it keeps what it measured
                stopped_slow = slow is not None and slow < budget_left
                if not stopped_slow:
                    self.halted = "budget"
                worker.interrupt()
                code = self._waited(worker)
        except KeyboardInterrupt as stop:
            self.halted = signal_name(stop) or "SIGINT"
            worker.interrupt()
            code = self._waited(worker)
        except WorkerGone:
            code = None
        wall = time.monotonic() - started
        if code is None or code in STOPPED:
            worker.close()  # it ended, or ends now: the next trial of its backend starts one
        files = sorted(folder.glob("segbench-*.json"))
        stopped = self.halted not in (None, "budget")  # by the user: a signal
        if not files:
            if stopped:
                return trial_of(setting, NOT_RUN, command, "stopped before timing", wall_s=wall)
            lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
            last = (lines or [f"the worker ended (exit code {code})"])[-1]
            return trial_of(setting, FAILED, command, last.removeprefix("error: "), wall_s=wall)
        try:
            result = load_result(files[-1])
        except BadInput:  # stopped before its first timed step: nothing to read
            return trial_of(setting, FAILED, command, "stopped before timing", wall_s=wall)
        trial = measured_trial(setting, command, result, wall)
        if not full:
            trial = replace(trial, ci95_ms_per_image=None)
        if result.status == "interrupted" and (stopped or self.halted == "budget"):
            return self._cut_short(setting, command, result, wall, trial)
        if stopped_slow:
            why = (
                f"stopped after {wall:.0f} s, {SLOW_FACTOR:g}× the default's time for "
                f"{self.short} steps"
            )
            return replace(trial, status=PRUNED if trial.status != FAILED else FAILED, reason=why)
        if trial.status == RAN:
            self.walls[FULL if full else SHORT].append(wall)
            if full:
                self.results[index] = (result, files[-1])
            else:  # decided after the short rung
                trial = replace(trial, status=SHORT)
                pruned = self._cannot_reach_the_best(trial)
                if pruned:
                    trial = replace(trial, status=PRUNED, reason=pruned)
        return trial

    def _cut_short(
        self, setting: Setting, command: str, result: Result, wall: float, trial: TuneTrial
    ) -> TuneTrial:
        """A trial the session stopped (a signal, the budget): its timed steps, if any, as a
        pruned trial (a median, no CI; it cannot win), else not run."""
        from segbench.results.compare import ms_per_image_samples

        samples = ms_per_image_samples(result)
        why = "stopped" if self.halted != "budget" else "the budget was spent"
        if not samples:
            return trial_of(setting, NOT_RUN, command, f"{why} before timing", wall_s=wall)
        median = statistics.median(samples)
        return replace(
            trial,
            status=PRUNED,
            reason=f"{why} after {_steps(len(samples))}",
            ms_per_image=median,
            images_per_s=1000.0 / median,
            ci95_ms_per_image=None,
            samples_ms_per_image=samples,
            numerics=result.numerics.status if result.numerics else None,
        )

    @staticmethod
    def _waited(worker: Worker) -> int | None:
        """The code of a trial told to stop, once it has saved what it measured: a further
        Ctrl-C, SIGTERM or SIGHUP meanwhile is passed on to it, never left to end the wait."""
        while True:
            try:
                return worker.answer(None)
            except KeyboardInterrupt:
                worker.interrupt()
            except WorkerGone:
                return None
