"""Support vector machines: kernel SVC/SVR on small data, linear or Nystroem-approximated
kernels on large data (kernel SVMs are quadratic-to-cubic in rows)."""

from __future__ import annotations

from sklearn.calibration import CalibratedClassifierCV
from sklearn.kernel_approximation import Nystroem
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC, SVR, LinearSVC, LinearSVR

from ._base import Preprocessing, SearchSpace, SpaceContext

# Above this many rows an exact kernel SVM is too slow to cross-validate in a budget.
EXACT_KERNEL_MAX_ROWS = 5000


def _kernels(ctx: SpaceContext) -> list[str]:
    if ctx.n_rows > EXACT_KERNEL_MAX_ROWS:
        return ["linear", "rbf_approx"]
    return ["rbf", "linear", "poly"]


def suggest(trial, ctx: SpaceContext) -> dict:
    params = {
        "C": trial.suggest_float("C", 1e-3, 1e3, log=True),
        "kernel": trial.suggest_categorical("kernel", _kernels(ctx)),
    }
    if params["kernel"] != "linear":
        params["gamma"] = trial.suggest_float("gamma", 1e-4, 1.0, log=True)
    if params["kernel"] == "poly":
        params["degree"] = trial.suggest_int("degree", 2, 3)
    if ctx.is_classification:
        params["class_weight"] = trial.suggest_categorical("class_weight", ["none", "balanced"])
    else:
        params["epsilon"] = trial.suggest_float("epsilon", 1e-3, 1.0, log=True)
    return params


def _classifier(params, ctx: SpaceContext):
    kernel, C = params.get("kernel", "rbf"), params.get("C", 1.0)
    weight = None if params.get("class_weight", "none") == "none" else "balanced"
    if kernel == "linear":
        return LinearSVC(C=C, class_weight=weight, max_iter=5000, random_state=ctx.seed)
    if kernel == "rbf_approx":
        return make_pipeline(
            Nystroem(gamma=params.get("gamma", 0.1), n_components=min(500, ctx.n_rows), random_state=ctx.seed),
            LinearSVC(C=C, class_weight=weight, max_iter=5000, random_state=ctx.seed),
        )
    return SVC(
        C=C, kernel=kernel, gamma=params.get("gamma", "scale"), degree=params.get("degree", 3),
        class_weight=weight, cache_size=500, random_state=ctx.seed,
    )


def _linear_svr(C: float, eps: float, ctx: SpaceContext) -> LinearSVR:
    # The squared epsilon-insensitive loss solved in the primal (a Newton method): its time
    # does not depend on the scale of the target. liblinear's dual solver for the plain
    # epsilon-insensitive loss ran all of its iterations on house prices (~50 s per fold on
    # 17,000 rows), in C, where no clock can stop it.
    return LinearSVR(C=C, epsilon=eps, loss="squared_epsilon_insensitive", dual=False, max_iter=1000,
                     random_state=ctx.seed)


def _regressor(params, ctx: SpaceContext):
    kernel, C, eps = params.get("kernel", "rbf"), params.get("C", 1.0), params.get("epsilon", 0.1)
    if kernel == "linear":
        return _linear_svr(C, eps, ctx)
    if kernel == "rbf_approx":
        return make_pipeline(
            Nystroem(gamma=params.get("gamma", 0.1), n_components=min(500, ctx.n_rows), random_state=ctx.seed),
            _linear_svr(C, eps, ctx),
        )
    return SVR(C=C, kernel=kernel, gamma=params.get("gamma", "scale"), degree=params.get("degree", 3),
               epsilon=eps, cache_size=500)


def build(params, ctx: SpaceContext):
    if not ctx.is_classification:
        return _regressor(params, ctx)
    # SVMs give margins, not probabilities; Platt scaling on internal folds gives the
    # calibrated probabilities that ROC-AUC and log-loss need (SVC(probability=True) is
    # deprecated in scikit-learn 1.9).
    return CalibratedClassifierCV(_classifier(params, ctx), method="sigmoid", cv=3)


def defaults(ctx: SpaceContext) -> dict:
    params: dict = {"C": 1.0, "kernel": _kernels(ctx)[0]}
    if params["kernel"] != "linear":
        params["gamma"] = round(1.0 / max(1, ctx.n_features), 6)
    if ctx.is_classification:
        params["class_weight"] = "none"
    else:
        params["epsilon"] = 0.1
    return params


SPACE = SearchSpace(
    name="svm",
    tasks=("binary", "multiclass", "regression"),
    suggest=suggest,
    build=build,
    defaults=defaults,
    describe={
        "C": "log-float 1e-3 – 1e3",
        "kernel": f"rbf | linear | poly (≤ {EXACT_KERNEL_MAX_ROWS} rows); linear | rbf_approx (Nystroem) above",
        "gamma": "log-float 1e-4 – 1 (non-linear kernels)",
        "degree": "int 2 – 3 (poly)",
        "class_weight": "none | balanced (classification)",
        "epsilon": "log-float 1e-3 – 1 (regression)",
    },
    preprocessing=Preprocessing(scale=True, encoding="onehot", poly=False, select=True),
    summary="Max-margin models; Platt-calibrated probabilities for classification.",
)
