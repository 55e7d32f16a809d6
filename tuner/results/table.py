"""Terminal tables that fit the width they are given (``tuner run``, ``leaderboard``, ``runs``).

A table is a list of :class:`Column`. The *kept* columns (rank, model, the headline score with
± std, vs leader, train−CV, trials) are always shown whole; the others follow in order as long
as the table fits, and when they do not all fit, metric columns show their mean only (their
``short`` cells) so more of them fit. A footnote names what is hidden and the flag that shows
everything. With ``width=None`` (output that is not a terminal: a pipe, a file) every column
is shown in full: one stable layout whatever the terminal.

The JSON / CSV / Markdown / HTML renderings do not come through here (``leaderboard.render``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from rich import box
from rich.console import Console, Group
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


@dataclass
class Column:
    header: str
    cells: list[str]
    kept: bool = False  # always shown, never wrapped
    justify: str = "right"
    short: list[str] | None = None  # cells when space is short (a metric's mean without ± std)
    short_header: str | None = None  # header when space is short


@dataclass
class Fitted:
    """A table ready to print: the renderable, the width it needs, what was hidden or shortened."""

    renderable: object
    width: int
    hidden: list[str] = field(default_factory=list)
    shortened: bool = False


def _table(columns: list[Column], use_short: set[str], row_styles: list | None = None) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True, padding=(0, 1))
    for col in columns:
        header = col.short_header if use_short and col.short_header else col.header
        table.add_column(header, justify=col.justify, no_wrap=True, overflow="fold")
    n = len(columns[0].cells) if columns else 0
    for i in range(n):
        cells = [(c.short if c.header in use_short and c.short else c.cells)[i] for c in columns]
        table.add_row(*cells, style=(row_styles[i] if row_styles else None))
    return table


_MEASURE = Console(file=io.StringIO(), width=100_000, highlight=False)


def measure(table: Table) -> int:
    """The width a table needs to show every cell on one line."""
    return Measurement.get(_MEASURE, _MEASURE.options, table).maximum


def fit(columns: list[Column], width: int | None, *, title: str | None = None, notes: list[str] = (),
        row_styles: list | None = None, wide_hint: str = "--wide") -> Fitted:
    """Choose the columns for ``width`` (None: every column, the stable full layout) and build
    the table with its notes and, when something is hidden, a footnote naming it and ``wide_hint``."""
    head = [_line(title, width is not None, "bold")] if title else []
    if width is None:
        table = _table(columns, set(), row_styles)
        return Fitted(Group(*head, table, *_note_lines(notes, wrap=False)), measure(table))
    kept = [c for c in columns if c.kept]
    shown, use_short = list(columns), set()
    if measure(_table(shown, use_short)) > width:  # not everything fits: means only, then greedily
        use_short = {c.header for c in columns if c.short and not c.kept} | {""}  # {""}: short headers too
        shown = list(kept)
        for col in columns:
            if col.kept:
                continue
            trial = [c for c in columns if c in shown or c is col]
            if measure(_table(trial, use_short)) <= width:
                shown = trial
    hidden = [c.header for c in columns if c not in shown]
    shortened = any(c.header in use_short and c.short for c in shown)
    table = _table(shown, use_short, row_styles)
    foot = list(notes)
    if hidden or shortened:
        parts = []
        if hidden:
            parts.append(f"hidden at {width} columns: {', '.join(hidden)}")
        if shortened:
            parts.append("other metrics show the mean only")
        foot.append("; ".join(parts) + f". {wide_hint} shows every column.")
    return Fitted(Group(*head, table, *_note_lines(foot)), measure(table), hidden, shortened)


def _note_lines(notes, wrap: bool = True) -> list[Text]:
    """One line per note; in the full layout (pipes, files) a note is never wrapped."""
    return [_line(n, wrap, "dim") for n in notes]


def _line(text: str, wrap: bool, style: str) -> Text:
    return Text(text, style=style) if wrap else Text(text, style=style, no_wrap=True, overflow="ignore")


__all__ = ["Column", "Fitted", "fit", "measure"]
