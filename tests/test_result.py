import json

import pytest

from segbench.results.result import write_json_atomic
from segbench.results.stats import summarize_ms


def test_summary_statistics_match_hand_computation():
    ms = [100.0, 110.0, 120.0, 130.0, 140.0]
    s = summarize_ms(ms, batch_size=16, training_flops_per_image=129.4e9)
    assert s.steps == 5
    assert s.median_ms == 120.0 and s.mean_ms == 120.0
    assert s.stdev_ms == pytest.approx(15.8113883)
    assert s.p10_ms == pytest.approx(104.0) and s.p90_ms == pytest.approx(136.0)
    assert (s.min_ms, s.max_ms) == (100.0, 140.0)
    assert s.ms_per_image == pytest.approx(7.5)
    assert s.images_per_s == pytest.approx(133.3333333)
    assert s.seconds_per_100k_images == pytest.approx(750.0)
    assert s.tflops == pytest.approx(129.4e9 * 16 / 0.120 / 1e12)
    assert s.spread == pytest.approx((136.0 - 104.0) / 120.0)


def test_json_is_written_whole_or_not_at_all(tmp_path):
    path = write_json_atomic(tmp_path / "out" / "r.json", {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "out" / "bad.json", {"a": object()})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.json"]


def test_result_file_is_readable_by_others_like_any_new_file(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
