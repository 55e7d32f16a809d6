"""Dates of numbers only written day-first (13/04/2021) are read day-first throughout the column:
per value, pandas would read 01/02/2021 as 2 January and 13/02/2021 as 13 February."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from tuner.data.dataset import prepare
from tuner.data.features import DatetimeFeatures, infer_dayfirst, parse_dates


@pytest.mark.parametrize("values, dayfirst", [
    (["13/02/2021", "01/02/2021"], True),
    (["25.03.2021 10:30", "02.03.2021 09:00"], True),
    (["02/13/2021", "02/01/2021"], False),  # month-first: a second number above 12
    (["01/02/2021", "03/04/2021"], False),  # nothing tells: pandas' month-first
    (["2021-01-02", "2021-12-31"], False),  # ISO dates are year-month-day either way
    (["13/02/2021", "02/13/2021"], False),  # both orders: no rule, pandas' own per value
])
def test_the_order_comes_from_the_column(values, dayfirst):
    assert infer_dayfirst(values) is dayfirst


def test_a_day_first_column_is_read_day_first_and_iso_dates_beside_it_stay_iso():
    got = parse_dates(["01/02/2021", "13/02/2021", "2021-01-02", None], dayfirst=True)
    assert got.dt.strftime("%Y-%m-%d").tolist()[:3] == ["2021-02-01", "2021-02-13", "2021-01-02"]
    assert pd.isna(got.iloc[3])


def _days(n: int = 60) -> pd.Series:
    return pd.Series(pd.date_range("2021-01-01", periods=n, freq="D"))


def test_calendar_features_of_a_day_first_column_match_the_dates_and_survive_pickling():
    days = _days()
    X = pd.DataFrame({"when": days.dt.strftime("%d/%m/%Y")})
    features = DatetimeFeatures().fit(X)
    assert features.dayfirst_ == [True]
    again = pickle.loads(pickle.dumps(features))
    out = again.transform(X.head(20))  # only days <= 20 of January: ambiguous on their own
    np.testing.assert_array_equal(out[:, 1], days.dt.month.to_numpy()[:20])
    np.testing.assert_array_equal(out[:, 2], days.dt.day.to_numpy()[:20])


def test_a_transformer_saved_before_dayfirst_reads_month_first_as_it_did():
    features = DatetimeFeatures().fit(pd.DataFrame({"when": ["2021-01-05"]}))
    del features.dayfirst_
    out = features.transform(pd.DataFrame({"when": ["01/02/2021"]}))
    assert out[0, 1] == 1 and out[0, 2] == 2


def test_a_day_first_time_column_orders_the_rows_by_the_true_date():
    days = _days(40)
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(40)
    df = pd.DataFrame({"when": days.dt.strftime("%d/%m/%Y").to_numpy()[shuffled], "x": rng.normal(size=40),
                       "y": shuffled.astype(float)})
    ds = prepare(df, "y", time_column="when")
    np.testing.assert_array_equal(ds.y, np.arange(40, dtype=float))
    assert any("from 2021-01-01 to 2021-02-09" in n for n in ds.notes), ds.notes
