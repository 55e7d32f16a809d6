"""Keras 3 multilayer perceptron (TensorFlow backend), classification and regression.

Importing this module does not import TensorFlow or Keras: the estimators in
``tuner.models.keras_mlp`` import them on their first ``fit`` (quietly, unless
``TUNER_VERBOSE`` is set) and configure TensorFlow's threads from ``ctx.n_jobs``
once per process.

Per-epoch pruning: the estimator's ``fit`` accepts ``epoch_callback(epoch, logs)``
(through a pipeline: ``pipeline.fit(X, y, model__epoch_callback=cb)``), called
after every epoch with Keras's logs plus ``logs["pruning_value"]``: validation
log-loss for classifiers, validation MSE of the standardised target for
regressors; lower is better in both cases (see ``tuner.models.keras_mlp``).

Parameter names: the learning rate has one name per optimizer (``lr_adam``,
``lr_sgd``, ``lr_rmsprop``, ``lr_adagrad``), because good ranges differ by an
order of magnitude between them and TPE should learn each on its own.
Conditional parameters (``shape``, ``l1``, ``l2``, ``momentum``, ``nesterov``
and the other optimizers' learning rates) are absent when they do not apply.

``loss`` is one name with one set of choices per task: mse | mae | huber for regression,
crossentropy | kl_divergence for classification (a study is one task, so they never meet).
With the same ``label_smoothing`` the two classification losses differ by the entropy of
the smoothed target, which does not depend on the network: they have the same gradients and
train the same network, and only the reported loss value differs (KL is 0 at a perfect fit).
``loss`` is suggested for classification anyway, so that a ``--space`` file can fix it
(a space file fixes or narrows suggested parameters only); it costs a trial nothing and
carries no signal for the sampler. ``label_smoothing`` (classification, 0 – 0.2) is the
searched overfitting control; pruning and early stopping watch the unsmoothed log-loss,
so trials stay comparable whatever the loss and smoothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._base import Preprocessing, SearchSpace, SpaceContext

# The estimators (scikit-learn, and on fit TensorFlow) are imported in build():
# importing this module stays free for `tuner spaces` and runs without keras_mlp.
SHAPES = ("constant", "funnel")
ACTIVATIONS = ("relu", "elu", "gelu", "tanh")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
REGRESSION_LOSSES = ("mse", "mae", "huber")
CLASSIFICATION_LOSSES = ("crossentropy", "kl_divergence")
LABEL_SMOOTHING_RANGE = (0.0, 0.2)
PENALTIES = ("none", "l1", "l2", "l1_l2")

# optimizer -> (low, high, default) learning rate, log scale
LEARNING_RATES = {
    "adam": (1e-4, 1e-2, 1e-3),
    "sgd": (1e-3, 3e-1, 1e-2),
    "rmsprop": (1e-4, 1e-2, 1e-3),
    "adagrad": (1e-3, 3e-1, 1e-2),
}
PENALTY_RANGE = (1e-6, 1e-2)
IMBALANCE_FOR_CLASS_WEIGHT = 3.0  # majority/minority ratio from which class weights are searched


def _batch_sizes(ctx: SpaceContext) -> list[int]:
    if ctx.n_rows > 50_000:
        return [64, 128, 256, 512, 1024]
    if ctx.n_rows > 5_000:
        return [32, 64, 128, 256, 512]
    return [16, 32, 64, 128, 256]


def _epoch_budget(ctx: SpaceContext) -> tuple[int, int]:
    """(max epochs, early-stopping patience): fixed per data size, not searched."""
    if ctx.n_rows > 100_000:
        return 40, 5
    if ctx.n_rows > 20_000:
        return 80, 8
    return 150, 10


def suggest(trial, ctx: SpaceContext) -> dict:
    p: dict[str, Any] = {}
    p["n_layers"] = trial.suggest_int("n_layers", 1, 4)
    p["units"] = trial.suggest_int("units", 16, 512, log=True)
    if p["n_layers"] > 1:
        p["shape"] = trial.suggest_categorical("shape", list(SHAPES))
    p["activation"] = trial.suggest_categorical("activation", list(ACTIVATIONS))
    p["dropout"] = trial.suggest_float("dropout", 0.0, 0.5)
    p["batch_norm"] = trial.suggest_categorical("batch_norm", [False, True])
    p["penalty"] = trial.suggest_categorical("penalty", list(PENALTIES))
    if p["penalty"] in ("l1", "l1_l2"):
        p["l1"] = trial.suggest_float("l1", *PENALTY_RANGE, log=True)
    if p["penalty"] in ("l2", "l1_l2"):
        p["l2"] = trial.suggest_float("l2", *PENALTY_RANGE, log=True)
    p["optimizer"] = opt = trial.suggest_categorical("optimizer", list(OPTIMIZERS))
    low, high, _ = LEARNING_RATES[opt]
    p[f"lr_{opt}"] = trial.suggest_float(f"lr_{opt}", low, high, log=True)
    if opt == "sgd":
        p["momentum"] = trial.suggest_float("momentum", 0.0, 0.99)
        p["nesterov"] = trial.suggest_categorical("nesterov", [False, True])
    p["batch_size"] = trial.suggest_categorical("batch_size", _batch_sizes(ctx))
    if ctx.task == "regression":
        p["loss"] = trial.suggest_categorical("loss", list(REGRESSION_LOSSES))
        return p
    p["loss"] = trial.suggest_categorical("loss", list(CLASSIFICATION_LOSSES))
    p["label_smoothing"] = trial.suggest_float("label_smoothing", *LABEL_SMOOTHING_RANGE)
    if ctx.class_imbalance >= IMBALANCE_FOR_CLASS_WEIGHT:
        p["class_weight"] = trial.suggest_categorical("class_weight", ["none", "balanced"])
    return p


def build(params: Mapping[str, Any], ctx: SpaceContext):
    from tuner.models.keras_mlp import KerasMLPClassifier, KerasMLPRegressor

    opt = params.get("optimizer", "adam")
    lr_default = LEARNING_RATES.get(opt, LEARNING_RATES["adam"])[2]
    penalty = params.get("penalty", "none")
    epochs, patience = _epoch_budget(ctx)
    common = dict(
        hidden_layers=int(params.get("n_layers", 2)),
        units=int(params.get("units", 64)),
        shape=params.get("shape", "constant"),
        activation=params.get("activation", "relu"),
        dropout=float(params.get("dropout", 0.1)),
        l1=float(params.get("l1", 0.0)) if penalty in ("l1", "l1_l2") else 0.0,
        l2=float(params.get("l2", 0.0)) if penalty in ("l2", "l1_l2") else 0.0,
        batch_norm=bool(params.get("batch_norm", False)),
        optimizer=opt,
        learning_rate=float(params.get(f"lr_{opt}", lr_default)),
        momentum=float(params.get("momentum", 0.9)),
        nesterov=bool(params.get("nesterov", False)),
        batch_size=int(params.get("batch_size", 32)),
        epochs=epochs,
        patience=patience,
        validation_fraction=0.1,
        random_state=ctx.seed,
        n_jobs=ctx.n_jobs,
    )
    if ctx.task == "regression":
        return KerasMLPRegressor(loss=params.get("loss", "mse"), **common)
    cw = params.get("class_weight", "none")
    return KerasMLPClassifier(
        class_weight=None if cw == "none" else cw,
        loss=params.get("loss", "crossentropy"),
        label_smoothing=float(params.get("label_smoothing", 0.0)),
        **common,
    )


def defaults(ctx: SpaceContext) -> dict:
    sizes = _batch_sizes(ctx)
    p: dict[str, Any] = {
        "n_layers": 2,
        "units": 64,
        "shape": "constant",
        "activation": "relu",
        "dropout": 0.1,
        "batch_norm": False,
        "penalty": "none",
        "optimizer": "adam",
        "lr_adam": 1e-3,
        "batch_size": 32 if 32 in sizes else sizes[0],
    }
    if ctx.task == "regression":
        p["loss"] = "mse"
        return p
    p["loss"] = "crossentropy"
    p["label_smoothing"] = 0.0
    if ctx.class_imbalance >= IMBALANCE_FOR_CLASS_WEIGHT:
        p["class_weight"] = "none"
    return p


SPACE = SearchSpace(
    name="keras_mlp",
    tasks=("binary", "multiclass", "regression"),
    suggest=suggest,
    build=build,
    defaults=defaults,
    describe={
        "n_layers": "int 1 – 4 hidden layers",
        "units": "log-int 16 – 512 (first layer width)",
        "shape": "constant | funnel (halving per layer; when n_layers > 1)",
        "activation": " | ".join(ACTIVATIONS),
        "dropout": "float 0 – 0.5 (after every hidden layer)",
        "batch_norm": "false | true",
        "penalty": "none | l1 | l2 | l1_l2 (weight penalties on hidden kernels)",
        "l1": "log-float 1e-6 – 1e-2 (penalty l1 / l1_l2)",
        "l2": "log-float 1e-6 – 1e-2 (penalty l2 / l1_l2)",
        "optimizer": " | ".join(OPTIMIZERS),
        "lr_adam": "log-float 1e-4 – 1e-2",
        "lr_rmsprop": "log-float 1e-4 – 1e-2",
        "lr_sgd": "log-float 1e-3 – 0.3",
        "lr_adagrad": "log-float 1e-3 – 0.3",
        "momentum": "float 0 – 0.99 (sgd)",
        "nesterov": "false | true (sgd)",
        "batch_size": "16 | 32 | 64 | 128 | 256; 32 – 512 above 5k rows, 64 – 1024 above 50k",
        "loss": "mse | mae | huber (regression; target standardised); crossentropy | kl_divergence "
        "(classification; both train the same network, only the reported loss differs)",
        "label_smoothing": "float 0 – 0.2 (classification; targets y·(1 − ls) + ls/K; 0 by default)",
        "class_weight": f"none | balanced (classification, imbalance ≥ {IMBALANCE_FOR_CLASS_WEIGHT:g})",
        "epochs": "fixed ≤ 150 (80 > 20k rows, 40 > 100k); early stopping on a 10% validation "
        "split, patience 10 (8, 5), best weights kept",
    },
    preprocessing=Preprocessing(scale=True, encoding="onehot", poly=False, select=False),
    summary="Keras 3 MLP (TensorFlow): depth, width, dropout, L1/L2, batch norm, optimizer; "
    "early stopping and per-epoch pruning.",
    requires=("tensorflow", "keras"),
    extra="keras",
)
