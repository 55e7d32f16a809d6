"""``KerasMLPRegressor``: the Keras MLP for a single numeric target.

What is its own: the training loss (MSE, MAE or Huber), a standardised target (mapped
back for predictions), and the validation MSE of that standardised target as the value
early stopping and pruning watch, comparable whatever the training loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import RegressorMixin

from tuner.models.keras_mlp.estimator import KerasMLPBase
from tuner.models.keras_mlp.network import REGRESSION_LOSSES


class KerasMLPRegressor(RegressorMixin, KerasMLPBase):
    """Multilayer perceptron regressor (Keras 3, TensorFlow backend).

    Same parameters as :class:`KerasMLPClassifier` (without ``class_weight``),
    plus:

    loss : "mse" | "mae" | "huber", the training loss.
    huber_delta : float, Huber's threshold, in units of the standardised target.
    scale_target : bool, standardise y for training (predictions are mapped
        back to the original scale). Strongly recommended: the default
        initialisation and learning rates assume targets of unit scale.
    """

    # Pickle and skops record this public path, whatever module defines the class, so
    # saved models keep loading when the package's inner layout changes.
    __module__ = "tuner.models.keras_mlp"

    _metric_name = "mse"

    def __init__(
        self,
        hidden_layers: int = 2,
        units: int = 64,
        shape: str = "constant",
        activation: str = "relu",
        dropout: float = 0.1,
        l1: float = 0.0,
        l2: float = 0.0,
        batch_norm: bool = False,
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float = 0.9,
        nesterov: bool = False,
        batch_size: int = 32,
        epochs: int = 150,
        patience: int = 10,
        validation_fraction: float = 0.1,
        loss: str = "mse",
        huber_delta: float = 1.0,
        scale_target: bool = True,
        random_state=None,
        n_jobs: int | None = 1,
        verbose: int = 0,
    ):
        super().__init__(
            hidden_layers=hidden_layers,
            units=units,
            shape=shape,
            activation=activation,
            dropout=dropout,
            l1=l1,
            l2=l2,
            batch_norm=batch_norm,
            optimizer=optimizer,
            learning_rate=learning_rate,
            momentum=momentum,
            nesterov=nesterov,
            batch_size=batch_size,
            epochs=epochs,
            patience=patience,
            validation_fraction=validation_fraction,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.loss = loss
        self.huber_delta = huber_delta
        self.scale_target = scale_target

    def fit(self, X, y, epoch_callback: Callable[[int, dict], Any] | None = None, sample_weight=None):
        """Fit the network; ``epoch_callback(epoch, logs)`` as described in :mod:`tuner.models.keras_mlp`;
        ``sample_weight``: each row's weight in the loss (and in the validation loss)."""
        return self._fit(X, y, epoch_callback=epoch_callback, sample_weight=sample_weight)

    def _encode_targets(self, y):
        if self.loss not in REGRESSION_LOSSES:
            raise ValueError(f"loss must be one of {REGRESSION_LOSSES}, got {self.loss!r}")
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError("KerasMLPRegressor supports a single target column")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity")
        if self.scale_target:
            mean, std = float(y.mean()), float(y.std())
            if not np.isfinite(std) or std <= 0:
                std = 1.0
        else:
            mean, std = 0.0, 1.0
        self.y_mean_, self.y_scale_ = mean, std
        return ((y - mean) / std).astype(np.float32).reshape(-1, 1)

    def _output_spec(self):
        return 1, "linear"

    def _loss_and_metrics(self, keras):
        if self.loss == "huber":
            loss = keras.losses.Huber(delta=float(self.huber_delta))
        elif self.loss == "mae":
            loss = "mean_absolute_error"
        else:
            loss = "mean_squared_error"
        return loss, [keras.metrics.MeanSquaredError(name="mse")]

    def predict(self, X) -> np.ndarray:
        out = self._forward(X)[:, 0]
        out = np.where(np.isfinite(out), out, 0.0)  # diverged network -> the mean
        return out * self.y_scale_ + self.y_mean_
