"""What the Keras MLP classifier and regressor share: hyperparameters and their checks,
scikit-learn tags, the fit entry point and the forward pass.

Why: the two public estimators differ only in how they encode targets, their output
layer and loss, and how they turn network outputs into predictions; everything else is
here once. Training itself is :mod:`tuner.models.keras_mlp.training`, saving
:mod:`tuner.models.keras_mlp.persistence`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from tuner.models.keras_mlp import training
from tuner.models.keras_mlp.network import OPTIMIZERS, SHAPES
from tuner.models.keras_mlp.persistence import KerasPersistenceMixin
from tuner.models.keras_mlp.tensorflow_setup import configure_tensorflow

_PREDICT_CHUNK = 8192  # rows per eager forward pass in predict


class KerasMLPBase(KerasPersistenceMixin, BaseEstimator):
    """Shared machinery; see :class:`~tuner.models.keras_mlp.KerasMLPClassifier` for the parameters."""

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

    def _seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)) and not isinstance(
            self.random_state, bool
        ):
            return int(self.random_state) % (2**31 - 1)
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

    # ---- subclass hooks ---------------------------------------------------
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

    # ---- fit / forward ----------------------------------------------------
    def _fit(self, X, y, epoch_callback=None, sample_weight=None):
        self._check_params()
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2, y_numeric=False
        )
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float32).ravel()
            if sample_weight.shape[0] != X.shape[0]:
                raise ValueError(f"sample_weight has {sample_weight.shape[0]} values for {X.shape[0]} rows")
        y_enc = self._encode_targets(y)
        X = np.ascontiguousarray(X, dtype=np.float32)

        keras, tf = configure_tensorflow(self.n_jobs)
        seed = self._seed()
        self.__dict__.pop("model_", None)  # a failed refit leaves no stale network behind
        result = training.train(self, keras, tf, X, y_enc, seed, epoch_callback, sample_weight)
        self.model_ = result.model
        self.history_ = result.history
        self.n_epochs_ = result.n_epochs
        self.best_epoch_ = result.best_epoch
        self.monitor_ = result.monitor
        self.best_score_ = result.best_score
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
