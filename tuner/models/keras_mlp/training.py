"""One Keras training run of an MLP estimator: validation split, seeded ``tf.data``
pipelines, early stopping, the per-epoch callback, and cleanup when the fit stops early.

Why a module of its own: this is the code that touches Keras's and TensorFlow's global
state (the session, the global RNGs, TensorFlow's gradient registry); the estimator
classes only validate, encode targets and predict.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.models.keras_mlp import tf_compat
from tuner.models.keras_mlp.network import build_network, make_optimizer


@dataclass
class TrainingResult:
    """The fitted network and what the estimator records about its training."""
    model: Any  # the fitted keras.Model, best epoch's weights restored
    history: dict[str, list[float]]  # Keras's per-epoch logs
    n_epochs: int  # epochs run
    best_epoch: int
    monitor: str  # the log key early stopping watched
    best_score: float  # its best value (NaN when never finite)


def validation_split(X, y_enc, fraction: float, seed: int, stratify, sample_weight=None):
    """``(X_train, y_train, X_val, y_val)``, and the two parts' weights after them when
    ``sample_weight`` is given; no validation part (None, None) when the data are too few for
    one or ``fraction`` is 0. Stratified on ``stratify`` when it can be."""
    n = X.shape[0]
    frac = float(fraction)
    n_val = int(round(n * frac))
    weighted = sample_weight is not None
    if frac <= 0 or n_val < 1 or n - n_val < 2 or n < 10:
        return (X, y_enc, None, None, sample_weight, None) if weighted else (X, y_enc, None, None)
    from sklearn.model_selection import train_test_split

    rows = np.arange(n)
    try:
        tr, va = train_test_split(rows, test_size=n_val, random_state=seed, stratify=stratify)
    except ValueError:  # a class too small to stratify
        tr, va = train_test_split(rows, test_size=n_val, random_state=seed)
    parts = (X[tr], y_enc[tr], X[va], y_enc[va])
    return (*parts, sample_weight[tr], sample_weight[va]) if weighted else parts


def epoch_hook(keras, user_callback: Callable[[int, dict], Any], pruning_metric: str):
    """A Keras callback calling ``user_callback(epoch, logs)`` with ``logs["pruning_value"]``
    added: ``pruning_metric``, or its training-set twin when there is no validation split."""

    class _EpochHook(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            value = logs.get(pruning_metric)
            if value is None:  # no validation split
                value = logs.get(pruning_metric.removeprefix("val_"))
            if value is not None:
                logs["pruning_value"] = float(value)
            user_callback(int(epoch), logs)

    return _EpochHook()


@contextlib.contextmanager
def caller_rng_preserved():
    """keras.utils.set_random_seed also seeds Python's and NumPy's global RNGs;
    give the caller (the driver, Optuna, ...) its global RNG state back."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def train(est, keras, tf, X, y_enc, seed: int, epoch_callback=None, sample_weight=None) -> TrainingResult:
    """Build, compile and fit the network of ``est`` on ``(X, y_enc)`` (float32, encoded).

    ``est`` supplies the hyperparameters and the task hooks (``_output_spec``,
    ``_loss_and_metrics``, ``_class_weight``, ``_stratify``, ``_metric_name``). When the
    fit raises (pruned, interrupted, failed), the half-trained model and the Keras session
    are freed before the exception goes on unchanged. ``sample_weight``: each row's weight in
    the training and validation losses; the estimator's class weights multiply it (Keras takes
    one or the other).
    """
    if sample_weight is None:
        Xtr, ytr, Xva, yva = validation_split(X, y_enc, est.validation_fraction, seed, est._stratify(y_enc))
        wtr = wva = None
    else:
        Xtr, ytr, Xva, yva, wtr, wva = validation_split(X, y_enc, est.validation_fraction, seed,
                                                        est._stratify(y_enc), sample_weight)
    class_weight = est._class_weight(ytr)
    if wtr is not None and class_weight is not None:  # fold the class weights into the row weights
        codes = np.asarray(ytr).ravel().astype(np.int64)
        wtr = wtr * np.asarray([class_weight.get(int(c), 1.0) for c in range(int(codes.max()) + 1)],
                               dtype=np.float32)[codes]
        class_weight = None
    has_val = Xva is not None
    monitor = ("val_" if has_val else "") + est._metric_name

    # Drop the previous model's graph state before building this one.
    keras.backend.clear_session(free_memory=False)
    gradients = tf_compat.snapshot(tf)
    model = None
    # Keras draws layer seeds from Python's global RNG and shuffles with
    # TF's: seed all of them, and give the caller its RNG state back.
    with caller_rng_preserved():
        try:
            keras.utils.set_random_seed(seed)
            n_out, out_act = est._output_spec()
            model = build_network(keras, est, X.shape[1], n_out, out_act)
            loss, metrics = est._loss_and_metrics(keras)
            model.compile(
                optimizer=make_optimizer(keras, est.optimizer, est.learning_rate, est.momentum, est.nesterov),
                loss=loss,
                metrics=metrics,
                jit_compile=False,
            )
            bs = int(est.batch_size)
            train_data = (
                tf.data.Dataset.from_tensor_slices((Xtr, ytr) if wtr is None else (Xtr, ytr, wtr))
                .shuffle(len(Xtr), seed=seed, reshuffle_each_iteration=True)
                .batch(bs)
                .prefetch(2)
            )
            val_data = tf.data.Dataset.from_tensor_slices((Xva, yva) if wva is None else (Xva, yva, wva)).batch(
                max(bs, 1024)) if has_val else None
            stopper = keras.callbacks.EarlyStopping(
                monitor=monitor,
                mode="min",
                patience=int(est.patience),
                min_delta=1e-4,
                restore_best_weights=True,
            )
            callbacks = [keras.callbacks.TerminateOnNaN(), stopper]
            if epoch_callback is not None:
                callbacks.append(epoch_hook(keras, epoch_callback, "val_" + est._metric_name))
            history = model.fit(
                train_data,
                validation_data=val_data,
                epochs=int(est.epochs),
                callbacks=callbacks,
                class_weight=class_weight,
                shuffle=False,  # the tf.data pipeline shuffles (seeded)
                verbose=est.verbose,
            )
        except BaseException:
            # Pruned, interrupted or failed: free the half-trained model now.
            model = None
            tf_compat.release_traced_step_gradients(gradients)
            keras.backend.clear_session(free_memory=True)
            raise
    tf_compat.release_traced_step_gradients(gradients)

    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    model.history = None  # break the model <-> History reference cycle
    n_epochs = len(history.epoch)
    best = getattr(stopper, "best_epoch", None)
    return TrainingResult(
        model=model,
        history=hist,
        n_epochs=n_epochs,
        best_epoch=int(best) if best is not None else n_epochs - 1,
        monitor=monitor,
        best_score=float(stopper.best) if np.isfinite(stopper.best) else float("nan"),
    )
