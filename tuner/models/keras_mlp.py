"""Scikit-learn compatible multilayer perceptrons on Keras 3 (TensorFlow backend).

``KerasMLPClassifier`` and ``KerasMLPRegressor`` are small wrappers of our own
(SciKeras has had no release since 2024 and predates scikit-learn's
``__sklearn_tags__``). They behave like any scikit-learn estimator: the
constructor only stores its arguments, ``fit`` / ``predict`` (and
``predict_proba`` / ``classes_`` for the classifier) work inside a ``Pipeline``,
with ``clone()`` and cross-validation, and a fitted estimator pickles by
embedding the network in Keras's own ``.keras`` format.

TensorFlow and Keras are imported lazily, on the first ``fit`` or unpickling,
never when this module is imported. Before that first import, unless the
environment variable ``TUNER_VERBOSE`` is set, TensorFlow's C++ start-up logs
are silenced (``TF_CPP_MIN_LOG_LEVEL=3``; the few absl lines printed before
logging is initialised, such as the CUDA and oneDNN notices, are dropped by
pointing file descriptor 2 at ``/dev/null`` for the duration of the import).

Per-epoch pruning
-----------------
``fit(X, y, epoch_callback=cb)`` calls ``cb(epoch, logs)`` at the end of every
epoch (``epoch`` counts from 0). ``logs`` is a copy of Keras's epoch logs plus
one key added here:

``logs["pruning_value"]``
    the number to report to Optuna, **lower is better**. It is the value of
    ``estimator.pruning_metric`` in the logs:

    * classifier: ``"val_logloss"``, the cross-entropy (log-loss) on the
      validation split, without weight penalties or class weights, so it is
      comparable between trials whatever their regularisation;
    * regressor: ``"val_mse"``, the mean squared error on the validation split
      of the standardised target (about ``1 - R²``), so it is comparable between
      trials whatever their training loss (MSE, MAE or Huber).

    Early stopping watches the same value. When the training set is too small
    for a validation split (or ``validation_fraction=0``), the training-set
    value (``"logloss"`` / ``"mse"``) is used instead.

The other keys are Keras's: ``loss``, ``val_loss`` (the training loss including
penalties), ``accuracy`` / ``val_accuracy`` for classifiers, ``mse`` /
``val_mse``, ``logloss`` / ``val_logloss``, ``learning_rate``.

The callback may raise (e.g. ``optuna.TrialPruned``): the exception leaves
``fit`` unchanged, and the Keras session is cleared on the way out.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "KerasMLPClassifier",
    "KerasMLPRegressor",
    "configure_tensorflow",
    "import_keras",
]

ACTIVATIONS = ("relu", "elu", "gelu", "tanh")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
REGRESSION_LOSSES = ("mse", "mae", "huber")
SHAPES = ("constant", "funnel")

_PREDICT_CHUNK = 8192  # rows per eager forward pass in predict

# --------------------------------------------------------------------------
# Lazy, quiet TensorFlow / Keras import and thread configuration
# --------------------------------------------------------------------------

_IMPORT_LOCK = threading.Lock()
_KERAS = None
_TF = None
_THREADS_CONFIGURED = False


def _verbose() -> bool:
    return bool(os.environ.get("TUNER_VERBOSE"))


@contextlib.contextmanager
def _stderr_fd_silenced():
    """Point the OS-level stderr (fd 2) at /dev/null for the duration.

    TensorFlow's native libraries print a few lines through absl before its
    logging is initialised; ``TF_CPP_MIN_LOG_LEVEL`` does not reach them.
    """
    try:
        sys.stderr.flush()
    except Exception:
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (e.g. some embedded interpreters)
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        os.close(saved)
        yield
        return
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras():
    """Import and return ``(keras, tensorflow)``, quietly unless ``TUNER_VERBOSE``.

    Sets ``KERAS_BACKEND=tensorflow`` unless the user chose a backend already
    (this family needs the TensorFlow backend).
    """
    global _KERAS, _TF
    if _KERAS is not None:
        return _KERAS, _TF
    with _IMPORT_LOCK:
        if _KERAS is not None:
            return _KERAS, _TF
        verbose = _verbose()
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        already = "tensorflow" in sys.modules
        if not verbose:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        silence = contextlib.nullcontext() if (verbose or already) else _stderr_fd_silenced()
        try:
            with silence:
                import keras
                import tensorflow as tf
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "The keras_mlp model family needs TensorFlow (with Keras 3): "
                "pip install 'tuner[keras]' (or pip install 'tensorflow>=2.20')"
            ) from exc
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                "The keras_mlp model family needs the TensorFlow backend of Keras, "
                f"but KERAS_BACKEND is {keras.backend.backend()!r}."
            )
        if not verbose:
            keras.utils.disable_interactive_logging()
            tf.get_logger().setLevel("ERROR")
        _KERAS, _TF = keras, tf
    return _KERAS, _TF


def _resolve_threads(n_jobs: int | None) -> int:
    """joblib convention -> TensorFlow thread count (0 = let TF decide)."""
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        cpus = os.cpu_count() or 1
        if n_jobs == -1:
            return 0
        return max(1, cpus + 1 + n_jobs)
    return int(n_jobs)


def configure_tensorflow(n_jobs: int | None = 1):
    """Import TensorFlow quietly and set its intra/inter-op threads from ``n_jobs``.

    Thread counts can only be set before TensorFlow's runtime initialises, so
    this takes effect once per process (the first call wins; later calls and a
    runtime already initialised by someone else are silently ignored).
    Returns ``(keras, tensorflow)``.
    """
    global _THREADS_CONFIGURED
    keras, tf = import_keras()
    if not _THREADS_CONFIGURED:
        with _IMPORT_LOCK:
            if not _THREADS_CONFIGURED:
                threads = _resolve_threads(n_jobs)
                try:
                    tf.config.threading.set_intra_op_parallelism_threads(threads)
                    tf.config.threading.set_inter_op_parallelism_threads(threads)
                except (RuntimeError, ValueError):
                    pass  # runtime already initialised: keep what it has
                _THREADS_CONFIGURED = True
    return keras, tf


def _gradient_registry() -> dict | None:
    try:
        from tensorflow.python.framework import ops as tf_ops

        registry = tf_ops._gradient_registry._registry
        return registry if isinstance(registry, dict) else None
    except Exception:  # private API moved: skip the workaround
        return None


def _closure_mentions(fn, needle: str, depth: int = 4) -> bool:
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if callable(value) and hasattr(value, "__code__"):
            if needle in getattr(value, "__qualname__", "") or (
                depth > 0 and _closure_mentions(value, needle, depth - 1)
            ):
                return True
    return False


def _release_traced_step_gradients(registry: dict | None, before: set) -> None:
    """Work around a TensorFlow leak of ~3 MiB per traced Keras step function.

    Each ``model.fit`` traces its train and test steps; inside them the
    distribution strategy's ``all_reduce`` is a ``tf.custom_gradient``, which in
    graph mode registers a ``CustomGradient-N`` entry in TensorFlow's global
    gradient registry that is never removed and keeps the whole traced graph
    alive (keras-team/keras#17458, tensorflow/tensorflow#61791: "clear_session()
    does not help"). Once tracing is over the entry is never looked up again, so
    drop the ones this fit added.
    """
    if registry is None:
        return
    try:
        for key in [k for k in list(registry) if k not in before]:
            if isinstance(key, str) and key.startswith("CustomGradient-"):
                entry = registry.get(key)
                fn = entry.get("type") if isinstance(entry, dict) else None
                if fn is not None and _closure_mentions(fn, "all_reduce"):
                    registry.pop(key, None)
    except Exception:  # never let a workaround break a fit
        pass


@contextlib.contextmanager
def _caller_rng_preserved():
    """keras.utils.set_random_seed also seeds Python's and NumPy's global RNGs;
    give the caller (the driver, Optuna, ...) its global RNG state back."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


# --------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------


def _make_epoch_hook(keras, user_callback: Callable[[int, dict], Any], pruning_metric: str):
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


class _KerasMLPBase(BaseEstimator):
    """Shared machinery; see :class:`KerasMLPClassifier` for the parameters."""

    # names the subclasses fill
    _metric_name = ""  # pure data metric watched by early stopping / pruning

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
        random_state=None,
        n_jobs: int | None = 1,
        verbose: int = 0,
    ):
        self.hidden_layers = hidden_layers
        self.units = units
        self.shape = shape
        self.activation = activation
        self.dropout = dropout
        self.l1 = l1
        self.l2 = l2
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ---- tags -----------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        # A seeded fit is reproducible on one machine; an unseeded one is not.
        tags.non_deterministic = self.random_state is None
        return tags

    # ---- public helpers ---------------------------------------------------
    @property
    def pruning_metric(self) -> str:
        """Key of Keras's epoch logs reported as ``logs["pruning_value"]``
        (lower is better)."""
        return "val_" + self._metric_name

    pruning_direction = "minimize"

    # ---- validation of hyperparameters ----------------------------------
    def _check_params(self):
        if int(self.hidden_layers) < 1:
            raise ValueError(f"hidden_layers must be >= 1, got {self.hidden_layers!r}")
        if int(self.units) < 1:
            raise ValueError(f"units must be >= 1, got {self.units!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {self.shape!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )
        if int(self.batch_size) < 1 or int(self.epochs) < 1:
            raise ValueError("batch_size and epochs must be >= 1")

    def _layer_widths(self) -> list[int]:
        n, w = int(self.hidden_layers), int(self.units)
        if self.shape == "funnel":
            floor = min(w, 8)
            return [max(w // (2**i), floor) for i in range(n)]
        return [w] * n

    def _seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)) and not isinstance(
            self.random_state, bool
        ):
            return int(self.random_state) % (2**31 - 1)
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

    # ---- model ------------------------------------------------------------
    def _make_optimizer(self, keras):
        lr = float(self.learning_rate)
        name = self.optimizer
        if name == "adam":
            return keras.optimizers.Adam(learning_rate=lr)
        if name == "sgd":
            return keras.optimizers.SGD(
                learning_rate=lr, momentum=float(self.momentum), nesterov=bool(self.nesterov)
            )
        if name == "rmsprop":
            return keras.optimizers.RMSprop(learning_rate=lr)
        if name == "adagrad":
            return keras.optimizers.Adagrad(learning_rate=lr)
        raise ValueError(name)  # unreachable after _check_params

    def _build_network(self, keras, n_features: int, n_outputs: int, output_activation: str):
        layers = keras.layers
        l1, l2 = float(self.l1 or 0.0), float(self.l2 or 0.0)
        regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 > 0 or l2 > 0) else None
        init = "glorot_uniform" if self.activation == "tanh" else "he_uniform"
        model = keras.Sequential(name="tuner_mlp")
        model.add(keras.Input(shape=(n_features,), name="features"))
        for i, width in enumerate(self._layer_widths()):
            model.add(
                layers.Dense(
                    width,
                    kernel_initializer=init,
                    kernel_regularizer=regularizer,
                    use_bias=not self.batch_norm,
                    name=f"dense_{i}",
                )
            )
            if self.batch_norm:
                model.add(layers.BatchNormalization(name=f"batch_norm_{i}"))
            model.add(layers.Activation(self.activation, name=f"{self.activation}_{i}"))
            if float(self.dropout) > 0:
                model.add(layers.Dropout(float(self.dropout), name=f"dropout_{i}"))
        model.add(layers.Dense(n_outputs, activation=output_activation, name="output"))
        return model

    # subclass hooks
    def _encode_targets(self, y):  # -> float32/int32 column for keras
        raise NotImplementedError

    def _output_spec(self) -> tuple[int, str]:
        raise NotImplementedError

    def _loss_and_metrics(self, keras):
        raise NotImplementedError

    def _stratify(self, y_enc):
        return None

    def _class_weight(self, y_enc):
        return None

    def _split(self, X, y_enc, seed):
        n = X.shape[0]
        frac = float(self.validation_fraction)
        n_val = int(round(n * frac))
        if frac <= 0 or n_val < 1 or n - n_val < 2 or n < 10:
            return X, y_enc, None, None
        from sklearn.model_selection import train_test_split

        strat = self._stratify(y_enc)
        try:
            Xtr, Xva, ytr, yva = train_test_split(
                X, y_enc, test_size=n_val, random_state=seed, stratify=strat
            )
        except ValueError:  # a class too small to stratify
            Xtr, Xva, ytr, yva = train_test_split(X, y_enc, test_size=n_val, random_state=seed)
        return Xtr, ytr, Xva, yva

    def _fit(self, X, y, epoch_callback=None):
        self._check_params()
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2, y_numeric=False
        )
        y_enc = self._encode_targets(y)
        X = np.ascontiguousarray(X, dtype=np.float32)

        keras, tf = configure_tensorflow(self.n_jobs)
        seed = self._seed()
        Xtr, ytr, Xva, yva = self._split(X, y_enc, seed)
        has_val = Xva is not None
        monitor = ("val_" if has_val else "") + self._metric_name

        # Drop the previous model's graph state before building this one.
        self.__dict__.pop("model_", None)
        keras.backend.clear_session(free_memory=False)
        registry = _gradient_registry()
        registry_before = set(registry) if registry is not None else set()
        model = None
        # Keras draws layer seeds from Python's global RNG and shuffles with
        # TF's: seed all of them, and give the caller its RNG state back.
        with _caller_rng_preserved():
            try:
                keras.utils.set_random_seed(seed)
                n_out, out_act = self._output_spec()
                model = self._build_network(keras, X.shape[1], n_out, out_act)
                loss, metrics = self._loss_and_metrics(keras)
                model.compile(
                    optimizer=self._make_optimizer(keras),
                    loss=loss,
                    metrics=metrics,
                    jit_compile=False,
                )
                bs = int(self.batch_size)
                train = (
                    tf.data.Dataset.from_tensor_slices((Xtr, ytr))
                    .shuffle(len(Xtr), seed=seed, reshuffle_each_iteration=True)
                    .batch(bs)
                    .prefetch(2)
                )
                val = (
                    tf.data.Dataset.from_tensor_slices((Xva, yva)).batch(max(bs, 1024))
                    if has_val
                    else None
                )
                stopper = keras.callbacks.EarlyStopping(
                    monitor=monitor,
                    mode="min",
                    patience=int(self.patience),
                    min_delta=1e-4,
                    restore_best_weights=True,
                )
                callbacks = [keras.callbacks.TerminateOnNaN(), stopper]
                if epoch_callback is not None:
                    callbacks.append(_make_epoch_hook(keras, epoch_callback, "val_" + self._metric_name))
                history = model.fit(
                    train,
                    validation_data=val,
                    epochs=int(self.epochs),
                    callbacks=callbacks,
                    class_weight=self._class_weight(ytr),
                    shuffle=False,  # the tf.data pipeline shuffles (seeded)
                    verbose=self.verbose,
                )
            except BaseException:
                # Pruned, interrupted or failed: free the half-trained model now.
                model = None
                _release_traced_step_gradients(registry, registry_before)
                keras.backend.clear_session(free_memory=True)
                raise
        _release_traced_step_gradients(registry, registry_before)

        hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        model.history = None  # break the model <-> History reference cycle
        self.model_ = model
        self.history_ = hist
        self.n_epochs_ = len(history.epoch)
        best = getattr(stopper, "best_epoch", None)
        self.best_epoch_ = int(best) if best is not None else self.n_epochs_ - 1
        self.monitor_ = monitor
        self.best_score_ = float(stopper.best) if np.isfinite(stopper.best) else float("nan")
        return self

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        X = np.ascontiguousarray(X, dtype=np.float32)
        model = self.model_
        if X.shape[0] == 0:
            return np.zeros((0, model.output_shape[-1]), dtype=np.float64)
        outs = [
            model(X[i : i + _PREDICT_CHUNK], training=False).numpy()
            for i in range(0, X.shape[0], _PREDICT_CHUNK)
        ]
        return np.concatenate(outs, axis=0).astype(np.float64)

    # ---- persistence ----------------------------------------------------
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
        state = super().__getstate__()
        state = dict(state)
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


class KerasMLPClassifier(ClassifierMixin, _KerasMLPBase):
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

    def fit(self, X, y, epoch_callback: Callable[[int, dict], Any] | None = None):
        """Fit the network. See the module docstring for ``epoch_callback``."""
        return self._fit(X, y, epoch_callback=epoch_callback)

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


class KerasMLPRegressor(RegressorMixin, _KerasMLPBase):
    """Multilayer perceptron regressor (Keras 3, TensorFlow backend).

    Same parameters as :class:`KerasMLPClassifier` (without ``class_weight``),
    plus:

    loss : "mse" | "mae" | "huber", the training loss.
    huber_delta : float, Huber's threshold, in units of the standardised target.
    scale_target : bool, standardise y for training (predictions are mapped
        back to the original scale). Strongly recommended: the default
        initialisation and learning rates assume targets of unit scale.
    """

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

    def fit(self, X, y, epoch_callback: Callable[[int, dict], Any] | None = None):
        """Fit the network. See the module docstring for ``epoch_callback``."""
        return self._fit(X, y, epoch_callback=epoch_callback)

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
