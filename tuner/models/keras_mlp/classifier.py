"""``KerasMLPClassifier``: the Keras MLP for binary and multiclass targets.

What is its own: label encoding (any sortable labels), the sigmoid / softmax output, the
training loss (cross-entropy or KL divergence, with optional label smoothing), class weights,
stratified validation split, and probabilities that stay a distribution even when the
network diverged.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets

from tuner.models.keras_mlp.estimator import KerasMLPBase

CLASSIFICATION_LOSSES = ("crossentropy", "kl_divergence")
MAX_LABEL_SMOOTHING = 0.5  # label_smoothing is in [0, MAX_LABEL_SMOOTHING)


def smoothed_distributions(ops, y_true, y_pred, n_classes: int, label_smoothing: float, dtype="float32"):
    """``(t, p)``, both ``(batch, K)``: the smoothed target distribution ``y (1 - ls) + ls / K``
    and the predicted one. Binary (``K = 2``): ``y_true`` is the 0/1 column and ``y_pred`` the one
    sigmoid unit, spread to the two columns ``[1 - t, t]`` and ``[1 - p, p]`` (the target is then
    ``y (1 - ls) + 0.5 ls``, as Keras's ``BinaryCrossentropy(label_smoothing=ls)`` smooths it).
    Multiclass: ``y_true`` holds integer codes, one-hot encoded here; ``y_pred`` is the softmax."""
    ls = float(label_smoothing)
    if n_classes == 2:
        y = ops.reshape(ops.cast(y_true, dtype), (-1, 1))
        t1 = y * (1.0 - ls) + 0.5 * ls
        p1 = ops.reshape(ops.cast(y_pred, dtype), (-1, 1))
        return ops.concatenate([1.0 - t1, t1], axis=-1), ops.concatenate([1.0 - p1, p1], axis=-1)
    codes = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    t = ops.one_hot(codes, n_classes, dtype=dtype) * (1.0 - ls) + ls / n_classes
    return t, ops.cast(y_pred, dtype)


def kl_divergence(ops, y_true, y_pred, n_classes: int, label_smoothing: float, epsilon: float, dtype="float32"):
    """Per row ``sum_k t_k log(t_k / p_k)`` over the K classes of the smoothed target ``t`` (see
    :func:`smoothed_distributions`), ``p`` clipped to ``[epsilon, 1]``; a class of target 0
    adds 0. Equals the cross-entropy of ``t`` and ``p`` minus the entropy of ``t``."""
    t, p = smoothed_distributions(ops, y_true, y_pred, n_classes, label_smoothing, dtype)
    log_t = ops.log(ops.clip(t, epsilon, 1.0))  # t log t is 0 where t is 0: the weight t is exact
    return ops.sum(t * (log_t - ops.log(ops.clip(p, epsilon, 1.0))), axis=-1)


@functools.cache
def _loss_classes(keras):
    """The two losses Keras has no built-in for, as ``keras.losses.Loss`` subclasses (defined once
    Keras is imported; models are loaded with ``compile=False``, so they need no registration)."""

    class SmoothedKLDivergence(keras.losses.Loss):
        """KL divergence of the (smoothed) target distribution from the predicted one."""

        def __init__(self, n_classes, label_smoothing=0.0, name="kl_divergence", **kwargs):
            super().__init__(name=name, **kwargs)
            self.n_classes, self.label_smoothing = int(n_classes), float(label_smoothing)

        def call(self, y_true, y_pred):
            return kl_divergence(keras.ops, y_true, y_pred, self.n_classes, self.label_smoothing,
                                 keras.config.epsilon(), self.dtype)

        def get_config(self):
            return {**super().get_config(), "n_classes": self.n_classes, "label_smoothing": self.label_smoothing}

    class SparseSmoothedCrossentropy(keras.losses.Loss):
        """Categorical cross-entropy with label smoothing on integer codes (one-hot encoded here:
        ``SparseCategoricalCrossentropy`` has no ``label_smoothing``)."""

        def __init__(self, n_classes, label_smoothing=0.0, name="categorical_crossentropy", **kwargs):
            super().__init__(name=name, **kwargs)
            self.n_classes, self.label_smoothing = int(n_classes), float(label_smoothing)

        def call(self, y_true, y_pred):
            codes = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
            target = keras.ops.one_hot(codes, self.n_classes, dtype=self.dtype)
            return keras.losses.categorical_crossentropy(target, y_pred, label_smoothing=self.label_smoothing)

        def get_config(self):
            return {**super().get_config(), "n_classes": self.n_classes, "label_smoothing": self.label_smoothing}

    return SmoothedKLDivergence, SparseSmoothedCrossentropy


class KerasMLPClassifier(ClassifierMixin, KerasMLPBase):
    """Multilayer perceptron classifier (Keras 3, TensorFlow backend).

    Binary: one sigmoid unit and binary cross-entropy. Multiclass: softmax and
    sparse categorical cross-entropy on label-encoded integer targets. Labels
    may be any sortable values (strings, ints); ``classes_`` is sorted as by
    :class:`~sklearn.preprocessing.LabelEncoder`.

    Training loss: ``loss`` and ``label_smoothing``. Smoothing trains on the target
    distribution ``t = y (1 - ls) + ls / K`` over the K classes (binary: K = 2, as Keras's
    ``BinaryCrossentropy(label_smoothing=ls)``), an overfitting control that pulls the
    probabilities towards uniform. ``"kl_divergence"`` is ``sum_k t_k log(t_k / p_k)`` (binary:
    over both classes, ``[1 - t, t]`` against ``[1 - p, p]``), which is the cross-entropy of
    ``t`` and ``p`` minus the entropy of ``t``; the entropy does not depend on the network, so
    the two losses have the same gradients (up to the clipping of ``p`` at Keras's epsilon)
    and train the same network. They differ in the reported ``loss`` / ``val_loss`` only: KL
    is 0 at a perfect fit. Early stopping and pruning watch ``logloss``, the cross-entropy
    on the unsmoothed labels, whatever the loss, so trials stay comparable. With the defaults
    (``"crossentropy"``, 0) the built-in Keras losses are used exactly as before.

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
    loss : "crossentropy" | "kl_divergence", the training loss (see above).
    label_smoothing : float in [0, 0.5), label smoothing of the training targets.
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
        loss: str = "crossentropy",
        label_smoothing: float = 0.0,
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
        self.loss = loss
        self.label_smoothing = label_smoothing

    def _check_params(self):
        super()._check_params()
        if self.loss not in CLASSIFICATION_LOSSES:
            raise ValueError(f"loss must be one of {CLASSIFICATION_LOSSES}, got {self.loss!r}")
        try:
            ls = float(self.label_smoothing)
        except (TypeError, ValueError):
            ls = math.nan
        if isinstance(self.label_smoothing, bool) or not 0.0 <= ls < MAX_LABEL_SMOOTHING:
            raise ValueError(f"label_smoothing must be a float in [0, {MAX_LABEL_SMOOTHING:g}), "
                             f"got {self.label_smoothing!r}")

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
        """The compile loss and metrics. ``logloss`` (early stopping, pruning) is the cross-entropy
        on the unsmoothed labels whatever the loss; the default loss is Keras's built-in one."""
        k = len(self.classes_)
        ls = float(self.label_smoothing)
        binary = k == 2
        metrics = ["accuracy", keras.metrics.BinaryCrossentropy(name="logloss") if binary
                   else keras.metrics.SparseCategoricalCrossentropy(name="logloss")]
        if self.loss == "kl_divergence":
            kl_class, _ = _loss_classes(keras)
            return kl_class(n_classes=k, label_smoothing=ls), metrics
        if ls == 0.0:  # today's losses, unchanged
            return ("binary_crossentropy" if binary else "sparse_categorical_crossentropy"), metrics
        if binary:
            return keras.losses.BinaryCrossentropy(label_smoothing=ls), metrics
        _, sparse_smoothed = _loss_classes(keras)
        return sparse_smoothed(n_classes=k, label_smoothing=ls), metrics

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
