"""Scikit-learn compatible multilayer perceptrons on Keras 3 (TensorFlow backend).

``KerasMLPClassifier`` and ``KerasMLPRegressor`` are small wrappers of our own
(SciKeras has had no release since 2024 and predates scikit-learn's
``__sklearn_tags__``). They
behave like any scikit-learn estimator: the constructor only stores its arguments,
``fit`` / ``predict`` (and ``predict_proba`` / ``classes_`` for the classifier) work
inside a ``Pipeline``, with ``clone()`` and cross-validation, and a fitted estimator
pickles by embedding the network in Keras's own ``.keras`` format.

TensorFlow and Keras are imported lazily and quietly, on the first ``fit`` or unpickling,
never when this package is imported (:mod:`~tuner.models.keras_mlp.tensorflow_setup`).

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

Modules: ``classifier`` / ``regressor`` (the public estimators), ``estimator`` (what they
share), ``network`` (architecture and its valid choices), ``training`` (one Keras fit),
``persistence`` (pickling through ``.keras`` bytes), ``tensorflow_setup`` (lazy quiet
import, threads), ``tf_compat`` (the one workaround using TensorFlow internals).

The estimators' recorded path (pickle, skops) is this package:
``tuner.models.keras_mlp.KerasMLPClassifier``; model folders written before the estimator
left ``search_spaces`` name ``search_spaces._keras_estimator.*``, which re-exports them.
"""

from tuner.models.keras_mlp.classifier import KerasMLPClassifier
from tuner.models.keras_mlp.network import ACTIVATIONS, OPTIMIZERS, REGRESSION_LOSSES, SHAPES
from tuner.models.keras_mlp.regressor import KerasMLPRegressor
from tuner.models.keras_mlp.tensorflow_setup import configure_tensorflow, import_keras

__all__ = [
    "KerasMLPClassifier",
    "KerasMLPRegressor",
    "configure_tensorflow",
    "import_keras",
    "ACTIVATIONS",
    "OPTIMIZERS",
    "REGRESSION_LOSSES",
    "SHAPES",
]
