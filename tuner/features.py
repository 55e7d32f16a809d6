"""Old import path of :mod:`tuner.data.features`, kept so that model folders written before
the package layout (their skops files name ``tuner.features.DatetimeFeatures``) still load, with a FutureWarning,
until tuner 0.3.0 (``tuner.model_types.REMOVED_IN``), when this module goes."""

from tuner.data.features import DatetimeFeatures, looks_like_dates

__all__ = ["DatetimeFeatures", "looks_like_dates"]
