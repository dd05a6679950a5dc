"""Text made safe to show: strings read from a file without terminal controls, and the
report's symbols in ASCII on a console that cannot encode them."""

from __future__ import annotations

import codecs
import re
import unicodedata

# C0, DEL and C1 controls (ESC starts terminal escape sequences, BEL ends some) and the
# bidirectional overrides that reorder what is shown; whitespace controls become a space.
_CONTROLS = {c: None for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROLS |= {c: " " for c in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, *range(0x1C, 0x20), 0x85)}
_CONTROLS |= {0x2028: " ", 0x2029: " "}  # line and paragraph separators
_CONTROLS |= {c: None for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def printable(text: str) -> str:
    """`text` (read from a file, a path, an environment variable) without control characters:
    nothing in it can clear the screen, set the window title or break a table row."""
    return text.translate(_CONTROLS)


# A cell's text stays text when rendered: no HTML, no table break, and no link or image
# (`[…](…)`, `![…](…)`, reference links need brackets; GFM links bare `scheme://` and `www.`).
_MARKDOWN = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "[": "\\[",
        "]": "\\]",
        "@": "\\@",  # an escaped @ splits the text: no e-mail autolink (user@example.com)
    }
)
# GitHub's autolinks: a scheme's "://" and "www." start a link after a blank or any of *_~(,
# so neither is looked for at a word boundary only ("_www.example.com" links).
_AUTOLINK = re.compile(r"(?i)(?:([a-z][a-z0-9+.-]*):(?=//)|(www)\.)")


def markdown_cell(text: str) -> str:
    """`text` as one Markdown table cell: printable, `|` escaped, no HTML, no link or image."""
    escaped = printable(text).translate(_MARKDOWN)
    return _AUTOLINK.sub(lambda m: f"{m[1]}\\:" if m[1] else f"{m[2]}\\.", escaped)


# What the report's symbols read as in ASCII (the rest: their compatibility decomposition,
# else "?"), for a console that cannot encode them (PYTHONIOENCODING=ascii, latin-1, cp1252).
ASCII_SYMBOLS = {
    "×": "x",
    "…": "...",
    "σ": "sigma",
    "ρ": "rho",
    "µ": "u",
    "μ": "u",
    "–": "-",
    "—": "--",
    "−": "-",
    "±": "+/-",
    "≤": "<=",
    "≥": ">=",
    "≈": "~",
    "≠": "!=",
    "→": "->",
    "←": "<-",
    "÷": "/",
    "·": "/",
    "°": "deg",
    "•": "*",
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "✓": "ok",
    "✗": "x",
}


def _ascii_fallback(error: UnicodeError) -> tuple[str, int]:
    """Encoding error handler "segbench-ascii": each character the stream cannot encode as
    its ASCII reading."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    return "".join(_ascii(c) for c in text), error.end


def _ascii(char: str) -> str:
    if char in ASCII_SYMBOLS:
        return ASCII_SYMBOLS[char]
    if "\u2500" <= char <= "\u257f":  # box drawing
        return "|" if char in "│┃║" else "-" if char in "─━═" else "+"
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain or "?"


ASCII_FALLBACK = "segbench-ascii"
codecs.register_error(ASCII_FALLBACK, _ascii_fallback)
