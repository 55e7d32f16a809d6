"""Old import path of :mod:`tuner.data.target_transforms`, kept so that model folders written
before the package layout (their skops files name ``tuner.target_transforms.*``) still load."""

from tuner.data.target_transforms import BoundedLog1p, BoundedYeoJohnson

__all__ = ["BoundedLog1p", "BoundedYeoJohnson"]
