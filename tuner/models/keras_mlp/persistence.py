"""How a fitted Keras MLP estimator is saved: the network travels in Keras's own
``.keras`` format, embedded as bytes when the estimator is pickled.

Why: a Keras model does not pickle reliably, while scikit-learn tooling (``clone``,
joblib, skops, the model artifact) expects estimators that do. The mixin here gives the
estimators ``__getstate__`` / ``__setstate__`` that swap the network for its ``.keras``
bytes and back, plus ``save`` / ``load`` / ``save_keras`` helpers.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings

from sklearn.utils.validation import check_is_fitted

from tuner.models.keras_mlp.tensorflow_setup import configure_tensorflow


class KerasPersistenceMixin:
    """Pickling and file helpers for an estimator whose fitted network is ``self.model_``."""

    def model_bytes(self) -> bytes:
        """The fitted network in Keras's ``.keras`` format, as bytes."""
        check_is_fitted(self, "model_")
        with tempfile.TemporaryDirectory(prefix="tuner-keras-") as tmp:
            path = os.path.join(tmp, "model.keras")
            with warnings.catch_warnings():
                # Keras calls np.array() on TF variables, whose __array__ has no
                # `copy` keyword: NumPy 2 deprecation noise, nothing to act on.
                warnings.filterwarnings(
                    "ignore", message=r"__array__ implementation doesn't accept a copy",
                    category=DeprecationWarning,
                )
                self.model_.save(path)
            with open(path, "rb") as fh:
                return fh.read()

    @staticmethod
    def _model_from_bytes(data: bytes, n_jobs: int | None = 1):
        keras, _ = configure_tensorflow(n_jobs)
        with tempfile.TemporaryDirectory(prefix="tuner-keras-") as tmp:
            path = os.path.join(tmp, "model.keras")
            with open(path, "wb") as fh:
                fh.write(data)
            return keras.saving.load_model(path, compile=False)

    def save_keras(self, path: str) -> None:
        """Write only the fitted network to ``path`` (a ``.keras`` file)."""
        with open(path, "wb") as fh:
            fh.write(self.model_bytes())

    def save(self, path: str) -> None:
        """Pickle the whole estimator (network embedded as ``.keras`` bytes)."""
        with open(path, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: str):
        """Load an estimator written by :meth:`save`."""
        with open(path, "rb") as fh:
            est = pickle.load(fh)
        if not isinstance(est, cls):
            raise TypeError(f"{path} holds a {type(est).__name__}, not a {cls.__name__}")
        return est

    def __getstate__(self):
        state = dict(super().__getstate__())
        if state.get("model_") is not None:
            state["model_"] = None
            state["_keras_model_bytes"] = self.model_bytes()
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop("_keras_model_bytes", None)
        super().__setstate__(state)
        if data is not None:
            self.model_ = self._model_from_bytes(data, getattr(self, "n_jobs", 1))
        elif "model_" in self.__dict__ and self.__dict__["model_"] is None:
            del self.__dict__["model_"]
