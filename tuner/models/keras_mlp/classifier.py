"""``KerasMLPClassifier``: the Keras MLP for binary and multiclass targets.

What is its own: label encoding (any sortable labels), the sigmoid / softmax output and
cross-entropy loss, class weights, stratified validation split, and probabilities that
stay a distribution even when the network diverged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets

from tuner.models.keras_mlp.estimator import KerasMLPBase


class KerasMLPClassifier(ClassifierMixin, KerasMLPBase):
    """Multilayer perceptron classifier (Keras 3, TensorFlow backend).

    Binary: one sigmoid unit and binary cross-entropy. Multiclass: softmax and
    sparse categorical cross-entropy on label-encoded integer targets. Labels
    may be any sortable values (strings, ints); ``classes_`` is sorted as by
    :class:`~sklearn.preprocessing.LabelEncoder`.

    Parameters
    ----------
    hidden_layers : int, number of hidden Dense layers.
    units : int, width of the first hidden layer.
    shape : "constant" (every layer ``units`` wide) or "funnel" (halving
        layer by layer, never below ``min(units, 8)``).
    activation : "relu" | "elu" | "gelu" | "tanh" (any Keras activation name).
    dropout : float in [0, 1), dropout after every hidden layer.
    l1, l2 : float >= 0, weight penalties on the hidden kernels.
    batch_norm : bool, batch normalisation before each activation.
    optimizer : "adam" | "sgd" | "rmsprop" | "adagrad".
    learning_rate : float.
    momentum, nesterov : used by SGD only.
    batch_size : int.
    epochs : int, upper bound; training stops early when the monitored value
        has not improved by 1e-4 for ``patience`` epochs, and the best
        epoch's weights are restored.
    patience : int.
    validation_fraction : float in [0, 1), held out of the training data (stratified
        for classifiers) for early stopping and pruning; 0 disables it.
    class_weight : None or "balanced" (classifier only).
    random_state : int, RandomState or None; an int makes the fit reproducible on
        the same machine and thread count.
    n_jobs : int, TensorFlow threads (intra- and inter-op); set once per process.
    verbose : int, Keras's fit verbosity.

    Attributes
    ----------
    classes_, n_features_in_, model_ (the fitted ``keras.Model``), history_
    (dict of per-epoch logs), n_epochs_ (epochs run), best_epoch_, monitor_,
    best_score_.
    """

    # Pickle and skops record this public path, whatever module defines the class, so
    # saved models keep loading when the package's inner layout changes.
    __module__ = "tuner.models.keras_mlp"

    _metric_name = "logloss"

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
        class_weight=None,
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
        self.class_weight = class_weight

    def fit(self, X, y, epoch_callback: Callable[[int, dict], Any] | None = None, sample_weight=None):
        """Fit the network; ``epoch_callback(epoch, logs)`` as described in :mod:`tuner.models.keras_mlp`;
        ``sample_weight``: each row's weight in the loss (and in the validation loss)."""
        return self._fit(X, y, epoch_callback=epoch_callback, sample_weight=sample_weight)

    def _encode_targets(self, y):
        check_classification_targets(y)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        enc = LabelEncoder().fit(y)
        self.classes_ = enc.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                "KerasMLPClassifier needs at least 2 classes in y; got "
                f"{len(self.classes_)} class: {self.classes_!r}"
            )
        if self.class_weight not in (None, "balanced", "none") and not isinstance(
            self.class_weight, dict
        ):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {self.class_weight!r}")
        codes = enc.transform(y)
        if len(self.classes_) == 2:
            return codes.astype(np.float32).reshape(-1, 1)
        return codes.astype(np.int32).reshape(-1, 1)

    def _output_spec(self):
        k = len(self.classes_)
        return (1, "sigmoid") if k == 2 else (k, "softmax")

    def _loss_and_metrics(self, keras):
        if len(self.classes_) == 2:
            return "binary_crossentropy", [
                "accuracy",
                keras.metrics.BinaryCrossentropy(name="logloss"),
            ]
        return "sparse_categorical_crossentropy", [
            "accuracy",
            keras.metrics.SparseCategoricalCrossentropy(name="logloss"),
        ]

    def _stratify(self, y_enc):
        return y_enc.ravel()

    def _class_weight(self, y_enc):
        cw = self.class_weight
        if cw is None or cw == "none":
            return None
        codes = y_enc.ravel().astype(np.int64)
        k = len(self.classes_)
        if cw == "balanced":
            counts = np.bincount(codes, minlength=k).astype(float)
            counts[counts == 0] = 1.0
            w = len(codes) / (k * counts)
            return {i: float(w[i]) for i in range(k)}
        # dict keyed by original labels
        return {i: float(cw.get(label, 1.0)) for i, label in enumerate(self.classes_)}

    def predict_proba(self, X) -> np.ndarray:
        out = self._forward(X)
        k = len(self.classes_)
        if k == 2:
            p = np.clip(out[:, 0], 0.0, 1.0)
            p = np.where(np.isfinite(p), p, 0.5)  # a diverged network: no information
            return np.column_stack([1.0 - p, p])
        out = np.where(np.isfinite(out), np.clip(out, 0.0, None), 0.0)
        sums = out.sum(axis=1, keepdims=True)
        bad = sums[:, 0] <= 0
        out[bad] = 1.0
        sums[bad] = k
        return out / sums

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags
