"""The keras_mlp family: scikit-learn conformance of the Keras wrappers, the search
space, per-epoch pruning, persistence, and a quiet, lazy TensorFlow import.

Kept small (tiny data, few epochs): TensorFlow traces a new graph per fit, so each
fit costs about a second however small the data.
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks as ec

from search_spaces import SpaceContext, keras_mlp
from tuner.models import keras_mlp as ke
from tuner.models.keras_mlp import KerasMLPClassifier, KerasMLPRegressor
from tuner.models.keras_mlp.classifier import CLASSIFICATION_LOSSES, MAX_LABEL_SMOOTHING

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

REPO = Path(__file__).resolve().parents[2]
FAST = dict(units=16, epochs=8, patience=8, batch_size=32, learning_rate=1e-2, random_state=0)


def binary_data(n=160, seed=0):
    X, y = make_classification(
        n_samples=n, n_features=6, n_informative=4, n_redundant=0, class_sep=2.0, random_state=seed
    )
    return X, np.where(y == 1, "yes", "no")


def regression_data(n=160, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = 100.0 + 30.0 * X[:, 0] - 20.0 * X[:, 1] + 10.0 * X[:, 2] * X[:, 3] + rng.normal(scale=3, size=n)
    return X, y


# ---------------------------------------------------------------------------
# import is lazy and TensorFlow is quiet
# ---------------------------------------------------------------------------


def test_import_is_lazy_fit_is_quiet_and_threads_follow_n_jobs():
    code = textwrap.dedent(
        """
        import sys
        import search_spaces.keras_mlp as km
        heavy = [m for m in ("tensorflow", "keras", "sklearn") if m in sys.modules]
        assert not heavy, heavy
        import numpy as np
        from search_spaces import SpaceContext
        ctx = SpaceContext(task="binary", n_rows=60, n_features=3, n_classes=2, seed=0, n_jobs=2)
        assert "tensorflow" not in sys.modules
        est = km.SPACE.build(km.defaults(ctx), ctx).set_params(epochs=2)
        X = np.random.default_rng(0).normal(size=(60, 3))
        est.fit(X, (X[:, 0] > 0).astype(int))
        est.predict_proba(X)
        import tensorflow as tf
        print(tf.config.threading.get_intra_op_parallelism_threads(),
              tf.config.threading.get_inter_op_parallelism_threads())
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TUNER_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2", "2"]
    # no absl / CUDA / oneDNN start-up lines, no Keras chatter
    assert proc.stderr.strip() == "", proc.stderr


# ---------------------------------------------------------------------------
# the search space
# ---------------------------------------------------------------------------

CONTEXTS = [
    SpaceContext(task="binary", n_rows=500, n_features=10, n_classes=2, seed=0),
    SpaceContext(task="binary", n_rows=500, n_features=10, n_classes=2, seed=0, class_imbalance=5.0),
    SpaceContext(task="multiclass", n_rows=8000, n_features=10, n_classes=4, seed=1),
    SpaceContext(task="regression", n_rows=200_000, n_features=10, seed=2, n_jobs=2),
]


def test_space_shape_and_constants():
    space = keras_mlp.SPACE
    assert space.name == "keras_mlp" and space.summary
    assert set(space.tasks) == {"binary", "multiclass", "regression"}
    assert space.preprocessing.scale and space.preprocessing.encoding == "onehot"
    # the space's choices are the estimator's valid values
    assert keras_mlp.SHAPES == ke.SHAPES and keras_mlp.OPTIMIZERS == ke.OPTIMIZERS
    assert keras_mlp.ACTIVATIONS == ke.ACTIVATIONS
    assert keras_mlp.REGRESSION_LOSSES == ke.REGRESSION_LOSSES
    assert keras_mlp.CLASSIFICATION_LOSSES == CLASSIFICATION_LOSSES
    assert keras_mlp.LABEL_SMOOTHING_RANGE[1] < MAX_LABEL_SMOOTHING


@pytest.mark.parametrize("ctx", CONTEXTS, ids=lambda c: f"{c.task}-{c.n_rows}-{c.class_imbalance:g}")
def test_defaults_replay_and_random_trials_build(ctx):
    space = keras_mlp.SPACE
    defaults = space.defaults(ctx)
    assert space.suggest(optuna.trial.FixedTrial(defaults), ctx) == defaults
    assert set(defaults) <= set(space.describe)

    est = space.build(defaults, ctx)
    assert is_classifier(est) == ctx.is_classification and is_regressor(est) != ctx.is_classification
    assert est.get_params()["learning_rate"] == 1e-3 and est.n_jobs == ctx.n_jobs
    assert est.random_state == ctx.seed

    seen = {}
    for sampler in (optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0, n_startup_trials=5)):
        study = optuna.create_study(sampler=sampler)
        for i in range(25):
            trial = study.ask()
            params = space.suggest(trial, ctx)
            assert params == trial.params  # returned keys are exactly the trial's names
            assert set(params) <= set(space.describe)
            est = space.build(trial.params, ctx)
            est._check_params()
            assert est.learning_rate == params[f"lr_{params['optimizer']}"]
            assert (est.l1 > 0) == ("l1" in params["penalty"])
            assert (est.l2 > 0) == ("l2" in params["penalty"])
            assert est.get_params()["loss"] == params["loss"]
            if ctx.is_classification:
                assert 0.0 <= params["label_smoothing"] <= 0.2
                assert est.label_smoothing == params["label_smoothing"]
            else:
                assert "label_smoothing" not in params and "label_smoothing" not in est.get_params()
            for key in ("optimizer", "activation", "loss", "class_weight"):
                if key in params:
                    seen.setdefault(key, set()).add(params[key])
            study.tell(trial, float(i % 7))
    assert seen["optimizer"] == set(keras_mlp.OPTIMIZERS)
    if ctx.task == "regression":
        assert seen["loss"] == {"mse", "mae", "huber"}
        assert "label_smoothing" not in defaults
    else:
        assert seen["loss"] == {"crossentropy", "kl_divergence"}
        # the defaults train as before: Keras's built-in cross-entropy, no smoothing
        assert defaults["loss"] == "crossentropy" and defaults["label_smoothing"] == 0.0
        assert space.build(defaults, ctx).get_params()["label_smoothing"] == 0.0
    assert ("class_weight" in seen) == (ctx.is_classification and ctx.class_imbalance >= 3)


# ---------------------------------------------------------------------------
# scikit-learn conformance
# ---------------------------------------------------------------------------

NO_FIT_CHECKS = [
    ec.check_no_attributes_set_in_init,
    ec.check_parameters_default_constructible,
    ec.check_get_params_invariance,
    ec.check_set_params,
    ec.check_estimator_cloneable,
    ec.check_estimator_repr,
    ec.check_estimator_tags_renamed,
    ec.check_valid_tag_types,
    ec.check_mixin_order,
    ec.check_estimators_unfitted,
    ec.check_estimators_empty_data_messages,
    ec.check_estimator_sparse_array,
    ec.check_fit1d,
    ec.check_fit2d_1sample,
]
FIT_CHECKS = [
    ec.check_fit2d_predict1d,
    ec.check_n_features_in,
    ec.check_dont_overwrite_parameters,
    ec.check_estimators_fit_returns_self,
    ec.check_estimators_pickle,
]


@pytest.mark.parametrize("cls", [KerasMLPClassifier, KerasMLPRegressor])
def test_sklearn_estimator_checks(cls):
    est = cls(units=8, epochs=2, patience=2, random_state=0)
    for check in NO_FIT_CHECKS + FIT_CHECKS:
        check(cls.__name__, est)
    if cls is KerasMLPClassifier:
        ec.check_classifiers_one_label(cls.__name__, est)


def test_clone_and_params_are_stored_unchanged():
    est = KerasMLPClassifier(units=33, optimizer="sgd", learning_rate=0.05, nesterov=True, class_weight="balanced")
    params = est.get_params()
    assert params["units"] == 33 and params["optimizer"] == "sgd" and params["class_weight"] == "balanced"
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    twin.set_params(units=7, dropout=0.0)
    assert twin.units == 7 and est.units == 33
    assert is_classifier(est) and not is_regressor(est)
    assert is_regressor(KerasMLPRegressor()) and KerasMLPRegressor().get_params()["loss"] == "mse"
    with pytest.raises(ValueError, match="optimizer"):
        KerasMLPClassifier(optimizer="lbfgs").fit(np.zeros((20, 2)), [0, 1] * 10)


@pytest.fixture(scope="module")
def fitted_binary():
    """A pipeline (scaler + classifier) fitted with an epoch callback."""
    X, y = binary_data()
    epochs, logs_seen = [], []

    def cb(epoch, logs):
        epochs.append(epoch)
        logs_seen.append(logs)

    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    pipe = Pipeline([("scale", StandardScaler()), ("model", KerasMLPClassifier(**FAST))])
    pipe.fit(X, y, model__epoch_callback=cb)
    caller_rng_untouched = np.random.rand() == expected_next
    return pipe, X, y, epochs, logs_seen, caller_rng_untouched


def test_binary_string_labels_proba_and_epoch_logs(fitted_binary):
    pipe, X, y, epochs, logs_seen, caller_rng_untouched = fitted_binary
    model = pipe.named_steps["model"]
    assert list(model.classes_) == ["no", "yes"] and model.n_features_in_ == X.shape[1]
    proba = pipe.predict_proba(X)
    assert proba.shape == (len(X), 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    pred = pipe.predict(X)
    assert pred.shape == (len(X),) and set(pred) <= {"no", "yes"}
    np.testing.assert_array_equal(pred, model.classes_[proba.argmax(axis=1)])
    assert roc_auc_score(y == "yes", proba[:, 1]) > 0.9
    # the callback saw every epoch, with the documented keys
    assert epochs == list(range(model.n_epochs_)) and model.n_epochs_ == FAST["epochs"]
    assert model.pruning_metric == "val_logloss"
    for logs in logs_seen:
        assert {"loss", "val_loss", "val_logloss", "val_accuracy", "pruning_value"} <= set(logs)
        assert logs["pruning_value"] == pytest.approx(logs["val_logloss"])
    assert model.history_["val_logloss"][model.best_epoch_] == pytest.approx(model.best_score_)
    assert caller_rng_untouched  # seeding Keras gave numpy's global RNG back


def test_pickle_save_and_keras_format_round_trips_are_identical(fitted_binary, tmp_path):
    keras, _ = ke.import_keras()

    pipe, X, *_ = fitted_binary
    model = pipe.named_steps["model"]
    proba = pipe.predict_proba(X)

    blob = pickle.dumps(pipe)
    assert len(blob) > 1000
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back.predict_proba(X), proba)
    np.testing.assert_array_equal(back.predict(X), pipe.predict(X))
    assert list(back.named_steps["model"].classes_) == ["no", "yes"]

    np.testing.assert_array_equal(copy.deepcopy(pipe).predict_proba(X), proba)

    model.save(tmp_path / "model.pkl")
    loaded = KerasMLPClassifier.load(tmp_path / "model.pkl")
    Xs = pipe.named_steps["scale"].transform(X)
    np.testing.assert_array_equal(loaded.predict_proba(Xs), model.predict_proba(Xs))

    # the bare network, in Keras's own format
    model.save_keras(str(tmp_path / "net.keras"))
    net = keras.saving.load_model(tmp_path / "net.keras", compile=False)
    np.testing.assert_array_equal(
        np.asarray(net(Xs.astype(np.float32), training=False))[:, 0], model.predict_proba(Xs)[:, 1]
    )

    # an unfitted estimator pickles too, and stays unfitted
    fresh = pickle.loads(pickle.dumps(KerasMLPClassifier(units=3)))
    assert fresh.units == 3 and not hasattr(fresh, "model_")


def test_multiclass_int_labels_class_order_and_class_weight():
    X, y = make_classification(
        n_samples=180, n_features=6, n_informative=4, n_redundant=0, n_classes=3,
        weights=[0.6, 0.3, 0.1], random_state=1,
    )
    labels = np.array([10, 3, 7])[y]
    est = KerasMLPClassifier(**{**FAST, "epochs": 15}, class_weight="balanced").fit(X, labels)
    assert list(est.classes_) == [3, 7, 10]
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert set(est.predict(X)) <= {3, 7, 10}
    assert (est.predict(X) == labels).mean() > 0.6


# ---------------------------------------------------------------------------
# classification losses: cross-entropy or KL divergence, label smoothing
# ---------------------------------------------------------------------------


def _batch(k):
    """A small batch as Keras hands it to the loss (encoded targets, network outputs) and the
    same as numpy one-hot targets and (n, K) probabilities."""
    rng = np.random.default_rng(k)
    if k == 2:
        y = np.array([0, 1, 1, 0, 1, 0], dtype=np.float32).reshape(-1, 1)
        p = np.array([0.1, 0.8, 0.3, 0.6, 0.999, 0.02], dtype=np.float32).reshape(-1, 1)
        return y, p, np.column_stack([1 - y[:, 0], y[:, 0]]), np.column_stack([1 - p[:, 0], p[:, 0]]).astype(float)
    y = np.array([0, 2, 1, 2, 0, 1], dtype=np.int32).reshape(-1, 1)
    z = rng.normal(scale=2.0, size=(6, k))
    p = (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)).astype(np.float32)
    return y, p, np.eye(k)[y[:, 0]], p.astype(float)


def _compile_loss(k, loss, label_smoothing):
    keras, _ = ke.import_keras()
    est = KerasMLPClassifier(loss=loss, label_smoothing=label_smoothing)
    est.classes_ = np.arange(k)  # what fit's target encoding sets
    fn, metrics = est._loss_and_metrics(keras)
    assert [getattr(m, "name", m) for m in metrics] == ["accuracy", "logloss"]  # the pruning metric is untouched
    return fn


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("ls", [0.0, 0.1, 0.3])
def test_kl_divergence_is_crossentropy_minus_target_entropy(k, ls):
    y, p, onehot, proba = _batch(k)
    t = onehot * (1 - ls) + ls / k  # binary: y (1 - ls) + 0.5 ls, over both classes
    ce = -(t * np.log(proba)).sum(axis=1)
    entropy = -(t * np.log(np.where(t > 0, t, 1.0))).sum(axis=1)
    kl = _compile_loss(k, "kl_divergence", ls)
    np.testing.assert_allclose(float(kl(y, p)), np.mean(ce - entropy), rtol=1e-5, atol=1e-6)
    # row weights weigh the per-row values, as with Keras's own losses
    w = np.array([1.0, 0.0, 2.0, 0.5, 1.0, 3.0], dtype=np.float32)
    np.testing.assert_allclose(float(kl(y, p, sample_weight=w)), np.sum(w * (ce - entropy)) / len(w),
                               rtol=1e-5, atol=1e-6)
    perfect = (t[:, 1:] if k == 2 else t).astype(np.float32)  # the network predicts the smoothed target
    assert float(kl(y, perfect)) == pytest.approx(0.0, abs=1e-5)

    ce_loss = _compile_loss(k, "crossentropy", ls)
    if ls == 0:  # exactly today's losses, so the default trains bit for bit as before
        assert ce_loss == ("binary_crossentropy" if k == 2 else "sparse_categorical_crossentropy")
    else:
        np.testing.assert_allclose(float(ce_loss(y, p)), np.mean(ce), rtol=1e-5, atol=1e-6)
        assert float(ce_loss(y, p)) > float(kl(y, p))  # by the target's entropy, the same for any network


@pytest.mark.parametrize("loss, n_classes", [("kl_divergence", 2), ("kl_divergence", 3), ("crossentropy", 3)])
def test_smoothed_losses_train_and_predict_probabilities(loss, n_classes, tmp_path):
    from tuner.deploy.artifact.reader import attach_native, load_pipeline
    from tuner.deploy.artifact.writer import write_pipeline

    X, y = make_classification(n_samples=120, n_features=5, n_informative=4, n_redundant=0, n_classes=n_classes,
                               class_sep=2.0, random_state=2)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("model", KerasMLPClassifier(**{**FAST, "epochs": 4}, loss=loss, label_smoothing=0.1))])
    pipe.fit(X, y)
    model = pipe.named_steps["model"]
    proba = pipe.predict_proba(X)
    assert proba.shape == (len(X), n_classes) and np.isfinite(proba).all()
    assert (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert (pipe.predict(X) == y).mean() > 0.6
    # early stopping still watches the unsmoothed log-loss
    assert model.monitor_ == "val_logloss" and len(model.history_["val_logloss"]) == model.n_epochs_
    if loss == "kl_divergence":  # the reported loss is the cross-entropy less the smoothed target's entropy
        assert min(model.history_["loss"]) < min(model.history_["logloss"])

    back = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(back.predict_proba(X), proba)
    assert back.named_steps["model"].get_params()["loss"] == loss
    info = write_pipeline(pipe, tmp_path)  # the model folder's way: skops + the network as .keras
    assert info["format"] == "skops", info
    card = {"pipeline": info}
    loaded = load_pipeline(tmp_path, card, False)
    attach_native(loaded, tmp_path, card)
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)


@pytest.mark.parametrize("bad, name", [
    (dict(loss="foo"), "loss"),
    (dict(loss="mse"), "loss"),
    (dict(label_smoothing=0.7), "label_smoothing"),
    (dict(label_smoothing=0.5), "label_smoothing"),
    (dict(label_smoothing=-0.1), "label_smoothing"),
    (dict(label_smoothing=float("nan")), "label_smoothing"),
    (dict(label_smoothing="a lot"), "label_smoothing"),
])
def test_bad_loss_or_label_smoothing_is_refused_in_fit_naming_it(bad, name):
    est = KerasMLPClassifier(**bad)
    assert est.get_params()[name] is bad[name]  # stored as given, checked in fit
    with pytest.raises(ValueError, match=f"^{name} must be"):
        est.fit(np.zeros((20, 2)), [0, 1] * 10)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_regression_each_loss(loss):
    X, y = regression_data()
    est = KerasMLPRegressor(**{**FAST, "epochs": 25, "patience": 25}, loss=loss)
    logs_seen = []
    est.fit(X, y, epoch_callback=lambda e, logs: logs_seen.append(logs))
    pred = est.predict(X)
    assert pred.shape == (len(X),) and np.isfinite(pred).all()
    assert abs(pred.mean() - y.mean()) < 0.25 * y.std()  # predictions are on the original scale
    assert np.corrcoef(pred, y)[0, 1] > 0.8
    assert est.pruning_metric == "val_mse"
    # pruning value is comparable between losses: MSE of the standardised target
    assert all(logs["pruning_value"] == pytest.approx(logs["val_mse"]) for logs in logs_seen)


def test_same_seed_same_predictions_and_divergence_stays_finite():
    X, y = regression_data(n=80)
    a = KerasMLPRegressor(**FAST).fit(X, y).predict(X)
    b = KerasMLPRegressor(**FAST).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    c = KerasMLPRegressor(**{**FAST, "random_state": 1}).fit(X, y).predict(X)
    assert not np.array_equal(a, c)
    # refitted on other rows (the driver refits a trial's pipeline fold after fold), it
    # predicts as a fresh network fitted on those rows
    refit = KerasMLPRegressor(**FAST).fit(X[:40], y[:40]).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, refit)
    # a configuration that explodes: predictions stay finite (the mean) instead of NaN
    wild = KerasMLPRegressor(**{**FAST, "epochs": 3, "learning_rate": 1e6}, optimizer="sgd").fit(X, y)
    assert np.isfinite(wild.predict(X)).all()


# ---------------------------------------------------------------------------
# per-epoch pruning
# ---------------------------------------------------------------------------


class _Stop(Exception):
    pass


def test_epoch_callback_exception_propagates_unchanged_and_estimator_recovers():
    X, y = binary_data(n=80)
    raised = _Stop("from the driver")

    def cb(epoch, logs):
        if epoch == 1:
            raise raised

    est = KerasMLPClassifier(**FAST)
    with pytest.raises(_Stop) as info:
        est.fit(X, y, epoch_callback=cb)
    assert info.value is raised
    assert not hasattr(est, "model_")
    est.fit(X, y)  # the session was cleaned up: the estimator fits again
    assert est.predict(X).shape == (80,)


def test_pruning_stops_a_hopeless_trial_early():
    X, y = binary_data(n=200, seed=3)
    max_epochs = 20
    epochs_run: dict[int, int] = {}

    def objective(trial):
        lr = trial.suggest_float("learning_rate", 1e-7, 1e-1, log=True)
        pipe = Pipeline([
            ("scale", StandardScaler()),
            ("model", KerasMLPClassifier(**{**FAST, "epochs": max_epochs, "patience": max_epochs, "learning_rate": lr})),
        ])

        def cb(epoch, logs):
            epochs_run[trial.number] = epoch + 1
            trial.report(logs["pruning_value"], step=epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        pipe.fit(X, y, model__epoch_callback=cb)
        return float(pipe.named_steps["model"].best_score_)

    study = optuna.create_study(
        direction="minimize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1),
    )
    study.enqueue_trial({"learning_rate": 3e-2})  # learns: sets the bar
    study.enqueue_trial({"learning_rate": 1e-7})  # cannot learn: must be pruned
    study.optimize(objective, n_trials=2)

    good, hopeless = study.trials
    assert good.state == optuna.trial.TrialState.COMPLETE
    assert epochs_run[0] == max_epochs
    assert hopeless.state == optuna.trial.TrialState.PRUNED
    assert epochs_run[1] < max_epochs
    assert max(hopeless.intermediate_values) == epochs_run[1] - 1


# ---------------------------------------------------------------------------
# recorded class path; TensorFlow's gradient-registry workaround
# ---------------------------------------------------------------------------


def test_pickles_record_the_public_path_and_the_old_path_still_loads(fitted_binary):
    pipe, X, *_ = fitted_binary
    model = pipe.named_steps["model"]
    Xs = pipe.named_steps["scale"].transform(X)
    blob = pickle.dumps(model, protocol=2)  # protocol 2 names classes as "module\nname\n"
    new, old = b"tuner.models.keras_mlp\nKerasMLPClassifier\n", b"search_spaces._keras_estimator\nKerasMLPClassifier\n"
    assert new in blob
    # a model pickled before the estimator moved (search_spaces._keras_estimator re-exports it)
    back = pickle.loads(blob.replace(new, old))
    assert type(back) is KerasMLPClassifier
    np.testing.assert_array_equal(back.predict_proba(Xs), model.predict_proba(Xs))


def _all_reduce_gradients(snap):
    from tuner.models.keras_mlp import tf_compat

    return [k for k in snap.registry if k not in snap.before and k.startswith("CustomGradient-")
            and tf_compat._closure_mentions(snap.registry[k]["type"], "all_reduce")]


def test_gradient_registry_workaround_applies_to_this_tensorflow(monkeypatch):
    from tuner.models.keras_mlp import tf_compat

    _, tf = ke.import_keras()
    X, y = binary_data(n=60)
    snap = tf_compat.snapshot(tf)
    assert snap.registry is not None, "TensorFlow's private registry moved: see tuner/models/keras_mlp/tf_compat.py"
    KerasMLPClassifier(**{**FAST, "epochs": 2}).fit(X, y)
    assert _all_reduce_gradients(snap) == []  # the fit's entries were dropped
    # without the workaround this TensorFlow still leaks them (when it no longer does: set FIXED_IN)
    monkeypatch.setattr(tf_compat, "release_traced_step_gradients", lambda snap: None)
    snap = tf_compat.snapshot(tf)
    KerasMLPClassifier(**{**FAST, "epochs": 2}).fit(X, y)
    leaked = _all_reduce_gradients(snap)
    assert leaked
    for key in leaked:
        snap.registry.pop(key)


def test_without_the_private_registry_the_workaround_is_skipped_with_one_warning(monkeypatch, caplog):
    from tuner.evaluation.cross_validation import fit_quietly
    from tuner.models.keras_mlp import tf_compat

    def moved():
        raise AttributeError("module has no attribute '_gradient_registry'")

    monkeypatch.setattr(tf_compat, "_registry_state", tf_compat._UNCHECKED)
    monkeypatch.setattr(tf_compat, "_private_registry", moved)
    X, y = binary_data(n=60)
    caplog.set_level("WARNING", logger=tf_compat.__name__)
    for _ in range(2):
        # inside the driver's fit_quietly, which records and drops the warnings of a fit
        est = KerasMLPClassifier(**{**FAST, "epochs": 2})
        fit_quietly(est, X, y)
        assert est.predict(X).shape == (60,)
    said = [r.getMessage() for r in caplog.records if r.name == tf_compat.__name__]
    assert len(said) == 1
    assert "skipping the workaround" in said[0] and "memory grows" in said[0]


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_sample_weight_reaches_the_loss(class_weight):
    """Rows of weight 0 carry flipped labels: with the weights the network learns the clean rule
    (the class weights multiply the row weights); without them it cannot."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2)).astype(np.float32)
    clean = (X[:, 0] > 0).astype(int)
    flipped = rng.random(400) < 0.5
    y = np.where(flipped, 1 - clean, clean)
    w = np.where(flipped, 0.0, 1.0)
    common = dict(hidden_layers=1, units=16, epochs=60, patience=60, random_state=0, learning_rate=0.03, dropout=0.0,
                  class_weight=class_weight)
    weighted = ke.KerasMLPClassifier(**common).fit(X, y, sample_weight=w)
    plain = ke.KerasMLPClassifier(**common).fit(X, y)
    assert np.mean(weighted.predict(X) == clean) > 0.9
    assert np.mean(plain.predict(X) == clean) < np.mean(weighted.predict(X) == clean) - 0.15
    reg = ke.KerasMLPRegressor(hidden_layers=1, units=8, epochs=3, random_state=0)
    reg.fit(X, X[:, 0] * 2, sample_weight=w)
    with pytest.raises(ValueError, match="sample_weight has 3 values for 400 rows"):
        reg.fit(X, X[:, 0], sample_weight=[1.0, 2.0, 3.0])
