"""What `segbench tune` shows: the ranked trials, the verdict line, the chart's points."""

from __future__ import annotations

from segbench.measure.tune import setting_of
from segbench.report.tune_chart import TuneTrialPoint
from segbench.report.uncut import Field, UncutTable
from segbench.results.tune_record import TuneInfo, TuneTrial

TUNE_FIELDS = (
    Field("#"),
    Field("setting"),
    Field("images/s (95 % CI)", number=True),
    Field("ms/image", number=True),
    Field("J/image", number=True),
    Field("numerics"),
    Field("verdict"),
)


def _images_per_s(trial: TuneTrial) -> str:
    if trial.images_per_s is None:
        return "—"
    text = f"{trial.images_per_s:.3g}"
    if trial.ci95_ms_per_image:
        fast, slow = trial.ci95_ms_per_image
        text += f" ({1000 / slow:.3g}–{1000 / fast:.3g})"
    return text


def _overridden(trial: TuneTrial) -> str:
    """ " (Keras did not compile)" where the effective setting differs from the one asked."""
    asked = trial.compile or trial.backend == "jax"
    if trial.compiled is None or (trial.compiled != "off") == asked:
        return ""
    return " (Keras did not compile)" if asked else f" (compiled: {trial.compiled})"


def _verdict(info: TuneInfo, index: int) -> str:
    trial = info.trials[index]
    marks = []
    if index == info.fastest:
        marks.append("fastest")
    if index == info.most_efficient:
        marks.append("most energy-efficient")
    if index == info.default:
        marks.append("default")
    if trial.status != "ran":
        marks.append(f"{trial.status}: {trial.reason}" if trial.reason else trial.status)
    return ", ".join(marks)


def tune_table(info: TuneInfo) -> UncutTable:
    """The trials that ran in full, fastest first, then those pruned or deviating, then those
    that did not run, each with the reason."""
    # Full trials that can win first, then those measured but out of the running (pruned after
    # a few short steps, numerics deviating), each fastest first; then those not measured.
    ranked = sorted(
        (i for i, t in enumerate(info.trials) if t.images_per_s is not None),
        key=lambda i: (info.trials[i].status != "ran", -info.trials[i].images_per_s),
    )
    others = [i for i, t in enumerate(info.trials) if t.images_per_s is None]
    spent = f"{info.elapsed_s / 60:.1f} of {info.budget_s / 60:g} min"
    stopped = f", stopped by {info.stopped_by}" if info.stopped_by else ""
    table = UncutTable(f"segbench tune — {info.preset} preset, {spent}{stopped}", TUNE_FIELDS)
    for i in ranked + others:
        t = info.trials[i]
        table.add_row(
            str(i + 1),
            setting_of(t).label + _overridden(t),
            _images_per_s(t),
            f"{t.ms_per_image:.4g}" if t.ms_per_image else "—",
            f"{t.j_per_image:.3g}" if t.j_per_image else "—",
            t.numerics or "—",
            _verdict(info, i),
            style="bold" if i == info.fastest else "",
        )
    return table


def verdict_lines(info: TuneInfo) -> list[str]:
    """The winner, its speedup over the default with the CI, and the command that runs it."""
    if info.fastest is None:
        return ["no trial ran to the end: see the reasons above"]
    best = info.trials[info.fastest]
    lines = [
        f"fastest: #{info.fastest + 1} {setting_of(best).label}, {best.images_per_s:.3g} images/s"
    ]
    if info.speedup is not None and info.fastest != info.default:
        ci = info.speedup_ci95
        spread = f" (95 % CI {ci[0]:.3g}–{ci[1]:.3g})" if ci else ""
        lines.append(f"  {info.speedup:.3g}× the default setting{spread}")
    elif info.fastest == info.default:
        lines.append("  the default setting is the fastest tried")
    if info.most_efficient is not None:
        efficient = info.trials[info.most_efficient]
        lines.append(
            f"most energy-efficient: #{info.most_efficient + 1} {setting_of(efficient).label}, "
            f"{efficient.j_per_image:.3g} J/image"
        )
    lines.append(f"run it: {info.command}")
    return lines


def tune_points(info: TuneInfo) -> list[TuneTrialPoint]:
    """The chart's points: every trial with a measurement."""
    points = []
    for i, t in enumerate(info.trials):
        if t.images_per_s is None or t.ms_per_image is None:
            continue
        fast, slow = t.ci95_ms_per_image or (t.ms_per_image, t.ms_per_image)
        points.append(
            TuneTrialPoint(
                label=f"#{i + 1} {setting_of(t).label}",
                images_per_s=t.images_per_s,
                ci_low=1000 / slow,
                ci_high=1000 / fast,
                ms_per_step=t.ms_per_image * t.batch_size,
                joules_per_image=t.j_per_image,
                fastest=i == info.fastest,
                most_efficient=i == info.most_efficient,
                numerics_ok=t.status != "deviates",
                pruned=t.status == "pruned",
            )
        )
    return points
