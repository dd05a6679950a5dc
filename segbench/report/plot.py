"""What every chart shares: plain numbers for ticks and labels, chart-safe text, the check
that a PNG may be written where asked, and the atomic PNG writer that marks it as segbench's.

matplotlib is a default dependency (the extra `plot` is kept for old commands). Each
`…_figure` function (comparison_chart.py, trace.py, tune_chart.py) builds the figure (what the
tests read); each `plot_…` writes it as a PNG, atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from segbench.atomic import atomic_path
from segbench.errors import BadInput
from segbench.report.printable import printable

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def number(value: float) -> str:
    """A value as a plain number for a tick or a label: 0.5, 12.2, 138, 18,000 (never 10³)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def duration(ms: float) -> str:
    """A step time for a label: "35.1 s", "412 ms"."""
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{number(ms)} ms"


def decimals(values: list[float]) -> int:
    """The fewest decimals that write each of `values` exactly: 0 for 115, 120; 1 for 127.5."""
    for places in range(7):
        if all(abs(v - round(v, places)) <= 1e-9 * max(1.0, abs(v)) for v in values):
            return places
    return 6


def plain_ticks():
    """A matplotlib tick formatter: plain numbers with thousands separators and the decimals
    the ticks' spacing needs (120, 127.5, 18,000), never an offset or a power of ten."""
    from matplotlib.ticker import Formatter

    class PlainTicks(Formatter):
        def __call__(self, x, pos=None):  # one value alone: as many decimals as it has
            return f"{x:,.{decimals([x])}f}"

        def format_ticks(self, values):
            places = decimals(list(values))
            return [f"{v:,.{places}f}" for v in values]

    return PlainTicks()


def plain(text: str) -> str:
    """A string from a result file as literal chart text: no control characters, and `$`
    escaped (matplotlib reads `$…$` as math, and fails on what is not)."""
    return printable(text).replace("$", r"\$")


# Written into every PNG's Software field: a file that has it may be replaced by a new plot.
SOFTWARE = "segbench"


def writable_target(path: Path, option: str, inputs: list[Path] = ()) -> None:
    """BadInput naming `option` unless `path` may receive a PNG: never a .json name (a result
    a shell glob put there), never one of the `inputs`, and an existing file only when it is
    a PNG segbench wrote (its Software field) — anything else is the user's."""
    shown = f"{option} {path}"
    if path.suffix.lower() == ".json":
        raise BadInput(f"{shown}: a .json name is a result file, not a picture; choose a .png name")
    try:
        same = any(path.resolve() == Path(i).resolve() for i in inputs)
        exists = path.exists()
        head = path.read_bytes()[:4096] if exists and path.is_file() else b""
    except OSError:
        return  # unreadable or not there: writing says why, in one line
    if same:
        raise BadInput(f"{shown}: is one of the input files; choose another name")
    ours = head.startswith(b"\x89PNG") and b"Software\x00" + SOFTWARE.encode() in head
    if exists and path.is_file() and not ours:
        raise BadInput(
            f"{shown}: exists and is not a PNG segbench wrote; choose another name or remove it"
        )


def save_png(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG at `path`, atomically, and free it."""
    import matplotlib.pyplot as plt

    from segbench import __version__

    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": f"{SOFTWARE} {__version__}"})
    finally:
        plt.close(fig)
    return Path(path)
