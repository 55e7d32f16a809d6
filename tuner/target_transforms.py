"""Old import path of :mod:`tuner.data.target_transforms`, kept so that model folders written
before the package layout (their skops files name ``tuner.target_transforms.*``) still load, with a FutureWarning,
until tuner 0.3.0 (``tuner.model_types.REMOVED_IN``), when this module goes."""

from tuner.data.target_transforms import BoundedLog1p, BoundedYeoJohnson

__all__ = ["BoundedLog1p", "BoundedYeoJohnson"]
