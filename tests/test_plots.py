"""The pictures read back from their figures: axis scales and limits, every bar's value,
legends, the trace's panels, and the tuning chart."""

from dataclasses import replace
from pathlib import Path

import pytest

from segbench.report.comparison_chart import comparison_figure
from segbench.report.plot import decimals, number
from segbench.report.trace import trace_figure
from segbench.report.tune_chart import TuneTrialPoint, plot_tune, tune_figure
from segbench.results.compare import compare
from segbench.results.result import load_result
from segbench.results.stats import timed_steps

ErrorbarContainer = pytest.importorskip(
    "matplotlib.container", reason="the plot extra is not installed"
).ErrorbarContainer

RESULTS = Path(__file__).parents[1] / "docs" / "results"
QUICK_CPU = RESULTS / "segbench-quick-cpu-20261126T162833Z.json"  # 0.9 images/s
QUICK_GPU = RESULTS / "segbench-quick-gpu-20261126T041704Z.json"  # H100, torch: 138 images/s
QUICK_GPU_BF16 = RESULTS / "segbench-quick-gpu-20261126T041723Z.json"
ARTICLE_CPU = RESULTS / "segbench-article-cpu-20261126T142621Z.json"  # epochs with validation


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


@pytest.fixture(scope="module")
def cpu_against_h100():
    return compare([load_result(p) for p in (QUICK_CPU, QUICK_GPU, QUICK_GPU_BF16)])


def tick_labels(axis) -> list[str]:
    axis.figure.canvas.draw()
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def test_a_148x_spread_is_drawn_on_a_log_axis_with_plain_numbers(cpu_against_h100):
    values = [row.images_per_s for row in cpu_against_h100.rows]
    assert max(values) / min(values) > 100  # 0.9 against 138 images/s
    ax = comparison_figure(cpu_against_h100).axes[0]
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left < min(values) and right > max(values)  # every bar has a length
    labels = tick_labels(ax.xaxis)
    assert {"0.5", "1", "10", "100"} <= set(labels)
    assert not any("$" in label or "^" in label for label in labels)  # never a bare 10³


def test_a_narrow_spread_stays_linear_from_zero():
    c = compare([load_result(p) for p in (QUICK_GPU, QUICK_GPU_BF16)], references=False)
    ax = comparison_figure(c).axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    assert "published" not in ax.get_title()  # no reference: no range to explain


def test_every_bar_is_labelled_with_its_value_and_speedup(cpu_against_h100):
    ax = comparison_figure(cpu_against_h100).axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == len(cpu_against_h100.rows)
    for text, row in zip(texts, cpu_against_h100.rows, strict=True):
        assert f"{number(row.images_per_s)} images/s" in text
    # The committed CPU run was made on a loaded machine, which its doctor warned of.
    assert texts[0] == "0.891 images/s · baseline\ncaveats: load WARN"
    assert texts[1].startswith("138 images/s · 155× baseline\ncaveats: outliers 2/20")
    low, _, high = cpu_against_h100.rows[5].speedup  # the Quadro: a published range
    assert f"{number(low)}–{number(high)}× baseline" in texts[5]


def test_error_bars_span_each_rows_ci_or_published_range(cpu_against_h100):
    ax = comparison_figure(cpu_against_h100).axes[0]
    (errorbar,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    segments = errorbar.lines[2][0].get_segments()
    for (start, end), row in zip(segments, cpu_against_h100.rows, strict=True):
        fast, slow = row.ms_per_image_ci95 or row.ms_per_image_range
        assert (start[0], end[0]) == (pytest.approx(1000 / slow), pytest.approx(1000 / fast))
    assert segments[5][0][0] == pytest.approx(1000 / 32.8)  # Quadro: 16.4–32.8 ms/image


def test_bar_labels_name_keras_generation_backend_and_precision(cpu_against_h100):
    labels = tick_labels(comparison_figure(cpu_against_h100).axes[0].yaxis)
    assert labels[0].startswith("#1 CPU") and labels[0].endswith("tensorflow · float32 · Keras 3")
    assert labels[2].endswith("torch · mixed_bfloat16 · Keras 3")
    assert labels[3].endswith("tensorflow · float32 · Keras 2 · published")
    assert labels[6].endswith("Keras 2 · estimate")


def test_the_legend_tells_measured_from_published_and_estimate(cpu_against_h100):
    legend = comparison_figure(cpu_against_h100).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "measured (a result file)",
        "published reference (article, Keras 2)",
        "author's estimate, not a measurement",
    ]


def test_the_trace_fits_the_timed_steps_and_sets_the_compile_step_aside():
    result = load_result(QUICK_CPU)
    timed = [s.ms for s in timed_steps(result.config, result.steps)]
    compile_ms = next(s.ms for s in result.steps if s.phase == "compile")
    fig = trace_figure(result)
    main = fig.axes[0]
    low, high = main.get_ylim()
    assert main.get_yscale() == "linear"
    assert low <= min(timed) and max(timed) <= high < compile_ms  # 16.0–21.1 s; 37.3 s apart
    assert high - low < 2 * (max(timed) - min(timed))  # zoomed on them
    assert main.get_ylabel() == "step time (ms)"
    labels = tick_labels(main.yaxis)
    assert "18,000" in labels and not any("$" in label for label in labels)
    legend = [t.get_text() for t in main.get_legend().get_texts()]
    assert "median of 20 timed steps: 17,960 ms" in legend
    assert "its 95 % CI: 16,987–18,861 ms" in legend
    side = next(ax for ax in fig.axes if ax.get_title().startswith("excluded"))
    assert [round(b.get_height()) for b in side.patches] == [
        round(s.ms) for s in result.steps if s.phase in ("compile", "warmup")
    ]
    assert "37.3 s" in [t.get_text() for t in side.texts]


def test_the_trace_of_epochs_draws_the_training_steps_and_names_the_rest():
    result = load_result(ARTICLE_CPU)
    main = trace_figure(result).axes[0]
    validation = [s.ms for s in result.steps if s.phase == "validation"]
    assert main.get_ylim()[0] > max(validation)  # 9.7 s at most; training steps from 15.9 s
    assert main.get_xlabel().endswith(
        "not drawn (not in the statistics): 12 validation steps, 1 partial batches"
    )


def test_tick_labels_keep_the_decimals_their_spacing_needs():
    assert decimals([115.0, 120.0, 125.0]) == 0
    assert decimals([115.0, 117.5, 120.0]) == 1
    assert decimals([0.25, 0.5]) == 2
    labels = tick_labels(trace_figure(load_result(QUICK_GPU)).axes[0].yaxis)  # 115–134 ms
    assert len(set(labels)) == len(labels)  # no two ticks written alike (127.5 vs 128)
    assert all(float(label.replace(",", "")) for label in labels)


TRIALS = [
    TuneTrialPoint("batch 16 · float32", 10.0, 9.5, 10.4, 1600.0, 3.2, False, False, True),
    TuneTrialPoint("batch 32 · float32", 12.0, 11.6, 12.5, 2666.0, 2.9, False, True, True),
    TuneTrialPoint("batch 32 · mixed_bfloat16", 15.5, 15.0, 16.1, 2064.0, 3.1, True, False, True),
    TuneTrialPoint("batch 64 · mixed_float16", 16.2, 15.9, 16.6, 3950.0, 3.4, False, False, False),
]


def test_plot_tune_writes_a_segbench_png(tmp_path):
    out = plot_tune(TRIALS, tmp_path / "tune" / "trials.png", "segbench tune")
    data = out.read_bytes()
    assert out == tmp_path / "tune" / "trials.png"
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"Software\x00segbench" in data[:4096]
    assert [p.name for p in (tmp_path / "tune").iterdir()] == ["trials.png"]  # no temporary


def points(ax) -> list[tuple[float, float, str]]:
    """(x, y, marker) of each trial's point, in order."""
    lines = [container.lines[0] for container in ax.containers]
    return [(line.get_xdata()[0], line.get_ydata()[0], line.get_marker()) for line in lines]


def test_plot_tune_uses_energy_when_every_trial_has_it_else_ms_per_step():
    with_energy = tune_figure(TRIALS, "t").axes[0]
    assert with_energy.get_xlabel().startswith("energy per image (J/image")
    assert [x for x, _, _ in points(with_energy)] == [3.2, 2.9, 3.1, 3.4]
    one_without = [*TRIALS[:3], replace(TRIALS[3], joules_per_image=None)]
    by_time = tune_figure(one_without, "t").axes[0]
    assert by_time.get_xlabel().startswith("time per step (ms")
    assert [x for x, _, _ in points(by_time)] == [1600.0, 2666.0, 2064.0, 3950.0]


def test_plot_tune_marks_the_fastest_the_most_efficient_and_deviating_numerics():
    ax = tune_figure(TRIALS, "t").axes[0]
    assert [marker for _, _, marker in points(ax)] == ["o", "D", "*", "o"]
    notes = [t.get_text() for t in ax.texts]
    assert notes[2].endswith("fastest") and "15.5 images/s" in notes[2]
    assert notes[1].endswith("most energy-efficient")
    assert notes[3].endswith("numerics deviate") and "numerics deviate" not in notes[0]
    hollow = ax.containers[3].lines[0]
    assert hollow.get_markerfacecolor() == "none"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "fastest",
        "most energy-efficient",
        "trial",
        "numerics deviate",
    ]
    with pytest.raises(ValueError, match="no trials"):
        tune_figure([], "t")


def test_plot_tune_marks_a_pruned_trial_apart_from_those_run_in_full():
    pruned = TuneTrialPoint("compiled", 4.0, 4.0, 4.0, 4000.0, None, False, False, True, True)
    ax = tune_figure([*TRIALS[:3], pruned], "t").axes[0]
    assert [marker for _, _, marker in points(ax)] == ["o", "D", "*", "X"]
    assert ax.texts[3].get_text().endswith("pruned (short steps)")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == "pruned after a few short steps" and "numerics deviate" not in legend
