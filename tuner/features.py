"""Old import path of :mod:`tuner.data.features`, kept so that model folders written before
the package layout (their skops files name ``tuner.features.DatetimeFeatures``) still load."""

from tuner.data.features import DatetimeFeatures, looks_like_dates

__all__ = ["DatetimeFeatures", "looks_like_dates"]
