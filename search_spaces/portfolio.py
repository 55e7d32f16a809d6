"""Each family's portfolio (``search_spaces.portfolio.portfolio(family, task)``, public): configurations
learned offline to do well across many tables, tried right after the family's defaults and before
TPE has anything to go on (the zero-shot idea of FLAML and AutoGluon).

The configurations live in ``_portfolios.py``, written by ``python -m benchmarks.build_portfolio``
with its provenance (tables, folds, commit, the measured gain, leave-one-table-out included).
A family without an entry (a user's own, or one the script was not run for) has none.
"""

from __future__ import annotations

from ._portfolios import PORTFOLIOS


def group_of(task: str) -> str:
    return "regression" if task == "regression" else "classification"


def portfolio(family: str, task: str) -> list[dict]:
    """The learned starting configurations of ``family`` for ``task`` (model parameters only)."""
    return [dict(c) for c in PORTFOLIOS.get(family, {}).get(group_of(task), [])]
