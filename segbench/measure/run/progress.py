"""What progress says while a run trains: the phase with its place in the plan ("repeat 2/5 ·
epoch 1/2 train"), step n/N, the last step's time, and the time left for the phase and for
the whole run, estimated from the steps timed so far and the preset's plan. Computes text from
the runner's events; never prints."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from segbench.benchmark.config import RunConfig
from segbench.measure.run.runner import COMPILE, TIMED, VALIDATION, WARMUP, Event


def plan_line(config: RunConfig) -> str:
    """What a run will do, in one line: "segbench run: preset quick — width 1, batch 16, 2
    warm-up + 20 timed steps, 1 repeat; tensorflow, float32"."""
    if config.epochs > 0:
        work = f"{config.epochs} epoch(s) with validation"
    else:
        work = f"{config.warmup} warm-up + {config.steps} timed steps"
    repeats = f"{config.repeats} repeat(s)"
    if config.repeats > 1 and config.cooldown > 0:
        repeats += f" with {duration(config.cooldown)} cool-downs"
    model = f"model {config.model}" if config.model else f"width {config.width:g}"
    settings = [config.backend, config.precision]
    settings += ["compiled"] if config.xla else []
    settings += [f"{config.batchnorm} batch norm"] if config.batchnorm == "fused" else []
    settings += [config.layout] if config.layout != "channels_last" else []
    return (
        f"segbench run: preset {config.preset} — {model}, batch {config.batch_size}, {work}, "
        f"{repeats}; {', '.join(settings)}"
    )


def duration(seconds: float) -> str:
    """`seconds` as a person reads it: "12 s", "4 min 05 s", "1 h 07 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass
class Tracker:
    """Follows the runner's events (`see`) for one run of `config` on a training split of
    `train_images` (and `validation_images` for the epoch protocol) images."""

    config: RunConfig
    train_images: int
    validation_images: int = 0
    repeat: int = 0
    phase: str = ""
    total: int = 0
    completed: int = 0
    last_ms: float | None = None
    ms: dict[str, list[float]] = field(default_factory=dict)  # by kind: compile/train/validation

    def see(self, event: Event) -> None:
        """Take in one event of the runner."""
        self.repeat = event.repeat
        if event.kind == "phase":
            self.phase, self.total, self.completed = event.phase, event.total, 0
        elif event.step is not None:
            self.completed = event.completed
            self.last_ms = event.step.ms
            self.ms.setdefault(_kind(event.step.phase), []).append(event.step.ms)
        else:  # a cool-down second
            self.completed = event.completed

    # What each step of a kind is expected to take (ms): its median so far, or that of the
    # training steps (a compile step, many times longer, stands for no other kind).
    def _expected_ms(self, kind: str) -> float | None:
        for found in (self.ms.get(kind), self.ms.get("train")):
            if found:
                return statistics.median(found)
        return None

    def phase_left_s(self) -> float | None:
        """Seconds left in the current phase; None before its first step has been timed."""
        if self.phase == "cool-down":
            return float(self.total - self.completed)
        expected = self._expected_ms(_kind(self.phase))
        if expected is None or self.total == 0:
            return None
        return (self.total - self.completed) * expected / 1000

    def run_left_s(self) -> float | None:
        """Seconds left in the whole run (the peak probe and saving not counted)."""
        here = self.phase_left_s()
        if here is None:
            return None
        later = 0.0
        for kind, count in self._later_steps():
            expected = self._expected_ms(kind)
            if expected is None:
                return None
            later += count * expected / 1000
        return here + later + self._later_cooldowns_s()

    def _plan(self) -> list[tuple[str, str, int]]:
        """One repeat's phases: (name as the runner calls it, kind, steps)."""
        config = self.config
        if config.epochs == 0:
            return [
                (COMPILE, COMPILE, 1),
                (WARMUP, "train", config.warmup),
                (TIMED, "train", config.steps),
            ]
        train = math.ceil(self.train_images / config.batch_size)
        validation = math.ceil(self.validation_images / config.batch_size)
        phases = []
        for epoch in range(1, config.epochs + 1):
            phases.append((f"epoch {epoch} train", "train", train))
            phases.append((f"epoch {epoch} validation", VALIDATION, validation))
        return phases

    def _later_steps(self) -> list[tuple[str, int]]:
        plan = self._plan()
        names = [name for name, _, _ in plan]
        after = names.index(self.phase) + 1 if self.phase in names else len(plan)
        if self.phase == "cool-down":
            after = 0  # the next repeat starts from its first phase
        later = [(kind, count) for _, kind, count in plan[after:]]
        repeats_after = self.config.repeats - self.repeat - 1
        later += [(kind, count) for _, kind, count in plan] * repeats_after
        return later

    def _later_cooldowns_s(self) -> float:
        repeats_after = self.config.repeats - self.repeat - 1
        return repeats_after * self.config.cooldown

    def label(self) -> str:
        """The phase and its place in the plan: "repeat 2/5 · epoch 1/2 train"."""
        phase = self.phase
        if phase.startswith("epoch "):
            number, name = phase.removeprefix("epoch ").split(" ", 1)
            phase = f"epoch {number}/{self.config.epochs} {name}"
        return f"repeat {self.repeat + 1}/{self.config.repeats} · {phase}"

    def left(self) -> str:
        """ "4 min 05 s left in this phase, 9 min 30 s in the run" (or what is known)."""
        here, run = self.phase_left_s(), self.run_left_s()
        if here is None:
            return "time left: after the first step"
        text = f"{duration(here)} left in this phase"
        return text if run is None or run - here < 1 else f"{text}, {duration(run)} in the run"

    def line(self) -> str:
        """The plain progress line for logs: phase, n/N, the last step's time, the time left."""
        parts = [f"{self.label()} {self.completed}/{self.total}"]
        if self.last_ms is not None and self.phase != "cool-down":
            parts.append(f"last step {self.last_ms:,.1f} ms")
        parts.append(self.left())
        return " · ".join(parts)


def _kind(phase: str) -> str:
    if phase == COMPILE:
        return COMPILE
    return VALIDATION if phase.endswith(VALIDATION) else "train"
