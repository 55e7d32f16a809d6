"""Numbers written for people: ``$1,234.50``, ``12%``, ``€ 3,000``, ``-$5``, read as the number inside.

Spreadsheets and scraped tables often store prices, fees and rates with a currency sign,
thousands separators or a percent sign, and pandas then reads the column as text: as a
category it is useless (often a different value in every row). A value is read as a number
only when all of it is one such number: one optional sign, one optional currency sign
(``$ € £ ¥ ₹``), digits with optional comma thousands separators in groups of three, an
optional decimal point, an optional trailing ``%``. Anything else stays text: words,
``3,5`` (a decimal comma, or a list), ``10-20``, ``12 kg``. A percentage keeps its number
(``12%`` is 12, as the table wrote it). Training and prediction read values with the same
rule (``tuner.data.columns`` and ``tuner.data.inputs``).
"""

from __future__ import annotations

import re

import pandas as pd

_FORMATTED = re.compile(
    r"(?P<sign>[-+]?)\s*[$€£¥₹]?\s*(?P<sign2>[-+]?)(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+)\s*%?")
_MARKS = re.compile(r"[$€£¥₹%,]")


def plain_number(text: str) -> str | None:
    """``text`` (stripped) as plain number text (``'-1234.50'``) when it is a number written with a
    currency sign, thousands separators or a percent sign; None otherwise (plain numbers included)."""
    if not _MARKS.search(text):
        return None
    match = _FORMATTED.fullmatch(text)
    if match is None or (match["sign"] and match["sign2"]):
        return None
    sign = match["sign"] or match["sign2"]
    return ("-" if sign == "-" else "") + match["number"].replace(",", "")


def to_numbers(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(floats, which were written formatted) for a Series of stripped strings: plain numbers as
    ``pd.to_numeric`` reads them, formatted ones by ``plain_number``, anything else NaN."""
    parsed = pd.to_numeric(text, errors="coerce")
    formatted = pd.Series(False, index=text.index)
    rest = parsed.isna()
    if rest.any():
        plain = text[rest].map(plain_number, na_action="ignore")
        found = plain.notna()
        if found.any():
            parsed = parsed.astype(float)
            parsed[plain.index[found]] = pd.to_numeric(plain[found]).astype(float)
            formatted[plain.index[found]] = True
    return parsed, formatted
