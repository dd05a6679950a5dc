"""Statistics on synthetic samples with known answers: intervals, significance, drift, repeats,
outliers, the regression gate, and the result file's JSON Schema."""

import json
from dataclasses import replace
from pathlib import Path

import fastjsonschema
import numpy as np
import pytest
from typer.testing import CliRunner

from segbench.cli import app
from segbench.results.compare import compare
from segbench.results.result import (
    SCHEMA_FILE,
    Result,
    load_result,
    recompute,
    result_schema,
    shipped_schema,
    to_json_text,
)
from segbench.results.stats import (
    FASTER,
    NO_DIFFERENCE,
    SLOWER,
    SLOWING,
    SPEEDING_UP,
    STEADY,
    TOO_FEW_STEPS,
    difference,
    drift,
    median_ci,
    olympic_mean,
    outliers,
    repeats,
    summarize_ms,
)

RESULTS = Path(__file__).parents[1] / "docs" / "results"
QUICK_CPU = sorted(RESULTS.glob("segbench-quick-cpu-*.json"))[0]  # 20 timed steps, this CPU


def noise(seed: int, n: int = 60, median: float = 100.0, sigma: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(median, sigma, n)


def test_identical_distributions_give_no_significant_difference():
    found = difference(noise(1), noise(2))
    assert found.verdict == NO_DIFFERENCE
    assert found.ci95[0] <= 1.0 <= found.ci95[1]
    assert found.p_value >= 0.01


def test_samples_scaled_by_1_3_are_slower_with_a_ci_around_the_scale():
    base = noise(1)
    found = difference(base, base * 1.3)
    assert found.verdict == SLOWER and found.p_value < 1e-6
    low, high = found.ci95
    assert high < 1.0  # excludes 1: B is slower
    assert low <= 1 / 1.3 <= high  # the speedup 1/1.3: B takes 1.3 × as long
    assert found.slowdown_pct == pytest.approx(30.0)
    assert difference(base * 1.3, base).verdict == FASTER


def test_four_steps_a_side_are_too_few_to_tell_even_when_fully_separated():
    # 4 vs 4 steps (the smoke preset): every B step 2x slower still gives p = 2/70 = 0.029, so
    # "no significant difference" would claim what the test cannot see; 5 vs 5 can decide.
    base = np.array([100.0, 101.0, 102.0, 103.0])
    found = difference(base, base * 2)
    assert found.verdict == TOO_FEW_STEPS
    assert found.p_value == pytest.approx(2 / 70)
    assert found.ci95[1] < 1.0  # the interval already excludes 1
    five = np.append(base, 104.0)
    assert difference(five, five * 2).verdict == SLOWER
    assert difference(noise(1, 5), noise(2, 5)).verdict == NO_DIFFERENCE
    one = difference(base, [300.0])  # a single step: no test at all
    assert (one.verdict, one.p_value) == (TOO_FEW_STEPS, None)


def test_a_linear_ramp_is_slowing_and_its_reverse_speeding_up():
    ramp = 100.0 + np.arange(30) * 1.0 + noise(3, 30, 0.0, 0.5)  # +29 % first to last
    slowing = drift(ramp)
    assert slowing.verdict == SLOWING and slowing.p_value < 1e-6
    assert slowing.change_pct == pytest.approx(100 * 29 / np.median(ramp), rel=0.05)
    assert drift(ramp[::-1]).verdict == SPEEDING_UP
    assert drift(noise(4, 30)).verdict == STEADY
    assert drift([100.0, 101.0, 102.0, 103.0]) is None  # too few steps to tell


def test_three_repeats_olympic_mean_is_the_middle_one():
    assert olympic_mean([12.0, 30.0, 20.0]) == 20.0
    block = repeats([12.0, 30.0, 20.0])
    assert block.olympic_mean_ms == 20.0
    assert block.cv_pct == pytest.approx(100 * np.std([12, 30, 20], ddof=1) / np.mean([12, 30, 20]))
    assert olympic_mean([10.0, 20.0]) == 15.0  # two repeats: nothing dropped


def test_median_ci_is_reproducible_and_brackets_the_median():
    sample = noise(5, 40)
    first, again = median_ci(sample), median_ci(list(sample))
    assert first == again
    assert first[0] < float(np.median(sample)) < first[1]
    assert median_ci([100.0]) is None
    assert median_ci([7.0, 7.0, 7.0]) == (7.0, 7.0)


def test_outliers_beyond_five_robust_sigmas_are_counted_not_dropped():
    sample = [*noise(6, 40), 400.0, 5.0]
    found = outliers(sample)
    assert found.count == 2
    assert found.low_ms > 5.0 and found.high_ms < 400.0
    summary = summarize_ms(sample, batch_size=16, training_flops_per_image=1e9)
    assert summary.steps == 42 and summary.outliers.count == 2


def test_recomputed_summary_of_a_committed_result_agrees_with_the_file():
    result = load_result(QUICK_CPU)
    again = recompute(result)
    assert again.disagreeing == []
    assert again.result.summary.median_ms == result.summary.median_ms
    low, high = again.result.summary.median_ci95_ms
    assert low <= result.summary.median_ms <= high


def _variant(tmp_path: Path, name: str, scale: float, edit=None) -> Path:
    """The committed quick CPU result with every step time scaled, its summary recomputed."""
    result = load_result(QUICK_CPU)
    steps = [replace(s, ms=s.ms * scale) for s in result.steps]
    result = replace(recompute(replace(result, steps=steps)).result, schema_version=2)
    data = json.loads(to_json_text(result))
    if edit:
        edit(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_fail_if_slower_exits_3_only_when_significantly_slower_by_more_than_pct(tmp_path):
    base = _variant(tmp_path, "base.json", 1.0)
    slower = _variant(tmp_path, "new.json", 1.3)
    runner = CliRunner()
    gate = ["--no-references", "--format", "json", "--fail-if-slower"]
    failed = runner.invoke(app, ["compare", str(base), str(slower), *gate, "5"])
    assert failed.exit_code == 3
    (line,) = failed.stderr.strip().splitlines()
    assert line.startswith(f"error: {slower} is 30.0 % slower than {base}")
    assert "more than the 5 % allowed" in line
    rows = json.loads(failed.stdout)["rows"]
    assert rows[1]["verdict"] == "slower" and rows[1]["speedup_ci95"][1] < 1.0
    passed = runner.invoke(app, ["compare", str(base), str(slower), *gate, "40"])
    assert passed.exit_code == 0, passed.output
    assert passed.stderr.strip().splitlines() == [
        f"ok: no result is significantly slower than {base} by more than 40 %"
    ]
    assert runner.invoke(app, ["compare", str(slower), str(base), *gate, "5"]).exit_code == 0
    bad = runner.invoke(app, ["compare", str(base), str(slower), "--fail-if-slower", "-1"])
    assert bad.exit_code == 2 and "--fail-if-slower must be a percentage" in bad.output


def test_a_hand_edited_summary_is_recomputed_and_named(tmp_path):
    edited = _variant(tmp_path, "edited.json", 1.0, lambda d: d["summary"].update(median_ms=1.0))
    c = compare([load_result(edited)], references=False, sources=[str(edited)])
    assert c.rows[0].ms_per_step == load_result(QUICK_CPU).summary.median_ms
    assert c.warnings[0].startswith(f"{edited}: the summary in the file disagrees with its steps")
    assert "median_ms" in c.warnings[0]


def test_shipped_json_schema_is_the_one_the_dataclasses_give():
    assert shipped_schema() == result_schema(), f"stale segbench/{SCHEMA_FILE}: run `just schema`"


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_committed_results_of_both_versions_validate_against_the_schema(path):
    fastjsonschema.validate(shipped_schema(), json.loads(path.read_text()))


def test_a_value_only_the_schema_forbids_is_refused_naming_the_field(tmp_path):
    path = _variant(tmp_path, "r.json", 1.0, lambda d: d["summary"]["drift"].update(verdict="up"))
    done = CliRunner().invoke(app, ["compare", str(path)])
    assert done.exit_code == 2
    (line,) = done.output.strip().splitlines()
    assert line == (
        f'error: {path}: field summary.drift.verdict: must be one of "steady", "slowing", '
        '"speeding-up", found "up"'
    )


def test_a_new_result_is_version_2_with_the_statistics(tmp_path):
    path = _variant(tmp_path, "r.json", 1.0)
    result = Result.from_dict(json.loads(path.read_text()))
    assert result.schema_version == 2
    s = result.summary
    assert s.median_ci95_ms[0] <= s.median_ms <= s.median_ci95_ms[1]
    assert s.drift.verdict in (STEADY, SLOWING, SPEEDING_UP) and s.outliers.count >= 0


@pytest.mark.parametrize(
    ("n", "m", "method"),
    [
        (4, 300_000, "asymptotic"),  # the pair that never finished exactly (68 s at 10,000)
        (300_000, 4, "asymptotic"),  # either side
        (8, 2_500, "exact"),  # 20,000 pairs: the exact method's last size
        (8, 2_501, "asymptotic"),
        (9, 50, "asymptotic"),  # scipy's own choice above 8 steps a side
        (5, 5, "exact"),
    ],
)
def test_mann_whitney_is_bounded_for_any_pair_of_sizes_and_names_its_method(n, m, method):
    rng = np.random.default_rng(1)
    a = 100 + rng.random(n)  # no ties: the exact method is allowed
    b = 120 + rng.random(m)
    found = difference(a, b)
    assert found.p_method == method
    assert found.p_value < 0.05 if min(n, m) > 4 else found.p_value <= 0.03
    assert found.speedup == pytest.approx(float(np.median(a) / np.median(b)))


def test_tied_steps_take_the_normal_approximation():
    found = difference([10.0, 10.0, 11.0], [12.0, 12.0, 13.0, 14.0])
    assert found.p_method == "asymptotic"


def test_two_steps_against_many_cannot_decide_and_say_so():
    """The normal approximation with 2 steps on one side never reaches p < 0.01 (U = 0 gives
    p = 0.014): 'too few steps to tell', never 'no significant difference'."""
    rng = np.random.default_rng(3)
    found = difference(100 + rng.random(300_000), [300.0, 301.0])
    assert found.p_method == "asymptotic" and found.p_value >= 0.01
    assert found.verdict == TOO_FEW_STEPS
