"""The network of the Keras MLP estimators: hidden-layer widths, optimizer, Keras model.

Why a module of its own: the architecture is what a search space tunes, and its valid
choices are the constants here (``search_spaces.keras_mlp`` keeps the same tuples, checked
by a test). Building the model needs Keras, which the caller has imported lazily and
passes in.
"""

from __future__ import annotations

ACTIVATIONS = ("relu", "elu", "gelu", "tanh")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
REGRESSION_LOSSES = ("mse", "mae", "huber")
SHAPES = ("constant", "funnel")


def layer_widths(hidden_layers: int, units: int, shape: str) -> list[int]:
    """Width of each hidden layer: all ``units`` ("constant"), or halving layer by layer
    but never below ``min(units, 8)`` ("funnel")."""
    n, w = int(hidden_layers), int(units)
    if shape == "funnel":
        floor = min(w, 8)
        return [max(w // (2**i), floor) for i in range(n)]
    return [w] * n


def make_optimizer(keras, name: str, learning_rate: float, momentum: float, nesterov: bool):
    """The Keras optimizer ``name`` (one of ``OPTIMIZERS``); momentum and Nesterov are SGD's."""
    lr = float(learning_rate)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=float(momentum), nesterov=bool(nesterov))
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    if name == "adagrad":
        return keras.optimizers.Adagrad(learning_rate=lr)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def build_network(keras, est, n_features: int, n_outputs: int, output_activation: str):
    """The uncompiled ``keras.Sequential`` for the hyperparameters of the estimator ``est``.

    Dense layers (He initialisation, Glorot for tanh), optional batch normalisation before
    each activation (then the Dense layer has no bias), dropout after it, L1/L2 penalties on
    the hidden kernels.
    """
    layers = keras.layers
    l1, l2 = float(est.l1 or 0.0), float(est.l2 or 0.0)
    regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 > 0 or l2 > 0) else None
    init = "glorot_uniform" if est.activation == "tanh" else "he_uniform"
    model = keras.Sequential(name="tuner_mlp")
    model.add(keras.Input(shape=(n_features,), name="features"))
    for i, width in enumerate(layer_widths(est.hidden_layers, est.units, est.shape)):
        model.add(
            layers.Dense(
                width,
                kernel_initializer=init,
                kernel_regularizer=regularizer,
                use_bias=not est.batch_norm,
                name=f"dense_{i}",
            )
        )
        if est.batch_norm:
            model.add(layers.BatchNormalization(name=f"batch_norm_{i}"))
        model.add(layers.Activation(est.activation, name=f"{est.activation}_{i}"))
        if float(est.dropout) > 0:
            model.add(layers.Dropout(float(est.dropout), name=f"dropout_{i}"))
    model.add(layers.Dense(n_outputs, activation=output_activation, name="output"))
    return model
