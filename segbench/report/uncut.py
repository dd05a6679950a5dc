"""Tables that never cut a figure: fitted to the console's width, text wrapped between words,
or, where the figures alone are wider than the console, shown as one block per row."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from segbench.report.printable import printable

PADDING = 2  # rich's default: one space either side of a cell


@dataclass(frozen=True)
class Field:
    """A column: its header, whether it holds figures (kept whole on one line), its alignment."""

    header: str
    number: bool = False
    justify: str | None = None  # default: figures right, text left


class UncutTable:
    """A rich table whose figures are never cut and whose words are never folded: each text
    column gets at least its longest word, each figure column its widest cell. Where that does
    not fit the width, every row is shown as a block of `header: value` lines instead."""

    def __init__(self, title: str | Text, fields: Iterable[Field]) -> None:
        self.title = _text(title)
        self.fields = list(fields)
        self.rows: list[tuple[list[Text], str]] = []

    def add_row(self, *cells: str | Text, style: str = "") -> None:
        """A row; strings are shown as they are (no markup, no control characters)."""
        self.rows.append(([_text(cell) for cell in cells], style))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self.widths(options.max_width)
        if widths is None:
            yield from self._blocks()
            return
        table = Table(title=self.title, title_justify="default")  # no trailing spaces
        for field, width in zip(self.fields, widths, strict=True):
            table.add_column(
                _text(field.header, no_wrap=False),  # a header wraps between words
                justify=field.justify or ("right" if field.number else "left"),
                no_wrap=field.number,
                overflow="fold",
                width=width - PADDING,
            )
        for cells, style in self.rows:
            table.add_row(*cells, style=style)
        yield table

    def widths(self, max_width: int) -> list[int] | None:
        """Each column's width (padding included) in a table of at most `max_width` columns,
        or None where the figures and longest words alone are wider. The widest text columns
        give up their room first, down to their longest word."""
        columns = [
            [_text(field.header)] + [cells[i] for cells, _ in self.rows]
            for i, field in enumerate(self.fields)
        ]
        most = [PADDING + max(_widest_line(t) for t in texts) for texts in columns]
        need = [
            PADDING
            + max(
                _longest_word(texts[0]),
                *(_widest_line(t) if field.number else _longest_word(t) for t in texts[1:]),
            )
            for field, texts in zip(self.fields, columns, strict=True)
        ]
        room = max_width - (len(self.fields) + 1)  # the borders
        if sum(need) > room:
            return None
        widths = list(most)
        while sum(widths) > room:
            i = max((i for i in range(len(widths)) if widths[i] > need[i]), key=widths.__getitem__)
            widths[i] -= 1
        return widths

    def _blocks(self) -> RenderResult:
        """The rows as blocks: the first cell as a heading, then `header: value` lines."""
        yield self.title
        first = self.fields[0].header
        for cells, style in self.rows:
            heading = Text.assemble("#" if first == "#" else "", cells[0], style=style)
            yield heading
            for field, cell in zip(self.fields[1:], cells[1:], strict=True):
                if cell.plain not in ("", "—"):
                    line = Text.assemble(f"{field.header}: ", cell, style=style, overflow="fold")
                    yield Padding(line, (0, 0, 0, 2), expand=False)  # wrapped lines indented


def _text(value: str | Text, no_wrap: bool | None = None) -> Text:
    return value if isinstance(value, Text) else Text(printable(value), no_wrap=no_wrap)


def _widest_line(text: Text) -> int:
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


def _longest_word(text: Text) -> int:
    return max((cell_len(word) for word in text.plain.split()), default=0)
