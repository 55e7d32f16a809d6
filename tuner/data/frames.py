"""Tables from other libraries at the edge: polars DataFrames and pyarrow Tables become pandas
DataFrames once, where they come in (``tuner.tune``, the estimators, ``LoadedModel.predict``).

Neither library is a dependency: a table is recognised by its type's module and converted
with its own ``to_pandas()``, which imports whatever it needs (pyarrow).
"""

from __future__ import annotations

import pandas as pd

_CONVERTIBLE = ("polars", "pyarrow")


def as_pandas(data):
    """``data`` as a pandas DataFrame when it is a polars DataFrame / LazyFrame or a pyarrow
    Table / RecordBatch; anything else unchanged (paths, records, pandas, NumPy)."""
    if isinstance(data, (pd.DataFrame, pd.Series, str)) or data is None:
        return data
    module = type(data).__module__.split(".")[0]
    if module not in _CONVERTIBLE:
        return data
    if module == "polars" and hasattr(data, "collect") and not hasattr(data, "to_pandas"):
        data = data.collect()  # a LazyFrame
    return data.to_pandas()


__all__ = ["as_pandas"]
