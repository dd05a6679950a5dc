"""benchmarks/upstream_train.py reads the author's program's epoch lines correctly."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

from upstream_train import parse_output

# Train.py's own lines (utils/Training_callbacks.py), carriage returns and all.
OUTPUT = (
    "---------------- Epoch 1/2 ----------------\n"
    "\r1/32 [|                                       ] - 7.1 s, 7100 ms/batch : Loss 1.4, "
    "mIoU 0.1000, Dice 0.2000"
    "\r32/32 [||||||||||||||||||||||||||||||||||||||||] - 211.0 s, 6594 ms/batch : Loss 0.5, "
    "mIoU 0.5000, Dice 0.6000 - done\n"
    "Recalculating 100/100 [==============================] 20.01 sec - done\n"
    "[Averaged   ]  mIoU 0.830000, Dice 0.900000 : data length 500    / 100    \n"
    "---------------- Epoch 2/2 ----------------\n"
    "\r32/32 [||||||||||||||||||||||||||||||||||||||||] - 193.5 s, 6047 ms/batch : Loss 0.2, "
    "mIoU 0.9000, Dice 0.9500 - done\n"
    "[Averaged   ]  mIoU 0.985000, Dice 0.990000 : data length 500    / 100    \n"
)


def test_epoch_times_and_validation_iou_are_read_per_epoch():
    figures = parse_output(OUTPUT)
    assert figures["epoch_train_s"] == [211.0, 193.5]
    assert figures["ms_per_batch"] == [6594.0, 6047.0]
    assert figures["epoch_ms_per_image"] == [422.0, 387.0]  # seconds × 1000 / 500 images
    assert figures["val_iou"] == [0.83, 0.985]


def _epoch(number: int, seconds: list[float]) -> str:
    """An epoch of Train.py's output with one progress line per batch (a running clock)."""
    lines, clock = [f"---------------- Epoch {number}/2 ----------------\n"], 0.0
    for n, s in enumerate(seconds, start=1):
        clock += s
        lines.append(
            f"\r{n}/{len(seconds)} [|||] - {clock:.1f} s, {1000 * clock / n:.0f} ms/batch : "
            "Loss 0.5, mIoU 0.5000, Dice 0.6000"
        )
    lines.append(" - done\n[Averaged   ]  mIoU 0.900000, Dice 0.950000 : data length 500 / 100\n")
    return "".join(lines)


def test_batch_times_come_from_the_running_clock_as_segbench_times_its_steps():
    first = [30.0] + [13.0] * 30 + [3.5]  # graph building in batch 1; 4 images in batch 32
    second = [12.0] * 31 + [3.0]
    figures = parse_output(_epoch(1, first) + _epoch(2, second))
    assert figures["batch_ms"][0][:2] == [30000.0, 13000.0] and len(figures["batch_ms"][1]) == 32
    # Full batches only, without the first one (segbench's compile step): 30 + 31 of them.
    assert figures["step_ms"] == [13000.0] * 30 + [12000.0] * 31
    assert figures["epoch_train_s"] == [pytest.approx(423.5), pytest.approx(375.0)]
