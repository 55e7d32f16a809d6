"""Preprocessing fitted inside every fold: one scikit-learn (imbalanced-learn) Pipeline
per trial, so nothing is learnt from validation rows.

    [clip numeric features at in-fold quantiles] -> impute -> encode categoricals -> scale (families
    that need it) (encoding "native": no imputation, categories as pandas category columns for the model)
    -> [polynomial features] -> [feature selection] -> [resampling | dropping outlying rows] -> model
    [wrapped in a target transform for regression]

The searchable choices are Optuna parameters whose names start with ``prep_``; a
family's ``Preprocessing`` says which choices apply to it.
"""

from __future__ import annotations

from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.feature_selection import SelectFromModel, SelectPercentile, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, PolynomialFeatures, StandardScaler, TargetEncoder

from search_spaces import Preprocessing, SpaceContext
from tuner.data.categories import MAX_CODES, CategoryCodes
from tuner.data.features import DatetimeFeatures
from tuner.data.outliers import OUTLIER_SHARE, QuantileClip, outlier_sampler
from tuner.data.schema import MAX_ONEHOT_CATEGORIES, Schema
from tuner.data.target_transforms import BoundedLog1p, BoundedYeoJohnson
from tuner.data.text import TextTokens

PREFIX = "prep_"
MAX_FEATURES_FOR_POLY = 20
MIN_FEATURES_FOR_SELECTION = 8
IMBALANCE_FOR_RESAMPLING = 3.0  # majority / minority
# Native categories (encoding "native"): a category seen in fewer training rows than this is
# grouped with the other rare ones (a split on it alone would fit noise), and a column keeps at
# most MAX_CODES categories (HistGradientBoosting's 255 bins).
MIN_CATEGORY_ROWS = 5
# prep_high_cardinality: columns with more distinct values than one-hot keeps (schema's limit)
# may be target-encoded (in-fold, cross-fitted) instead of the family's own encoding.
TARGET_ENCODER_CV = 5


def high_cardinality(schema: Schema) -> list[str]:
    """Categorical columns with more distinct training values than one-hot encoding keeps."""
    return [c for c in schema.encoded if len(schema.categories.get(c, ())) > MAX_ONEHOT_CATEGORIES]


def _choices(ctx: SpaceContext, spec: Preprocessing, schema: Schema, y_min: float,
             weighted: bool = False) -> dict[str, list]:
    """The searchable preprocessing dimensions that apply to this family and data.

    ``weighted`` (a run with ``--weights``): no resampling, which would make rows the weights do
    not describe; the weights (times the family's class weights) balance the classes instead."""
    choices: dict[str, list] = {}
    # free text becomes up to ~100 word columns each: degree 2 of those would be thousands
    if spec.poly and len(schema.columns) <= MAX_FEATURES_FOR_POLY and not schema.text:
        choices["prep_poly"] = [False, True]
    if spec.select and len(schema.columns) >= MIN_FEATURES_FOR_SELECTION:
        choices["prep_select"] = ["none", "univariate", "model"]
    if spec.encoding in ("onehot", "ordinal") and high_cardinality(schema):
        choices["prep_high_cardinality"] = [spec.encoding, "target"]
    if ctx.is_classification and ctx.class_imbalance >= IMBALANCE_FOR_RESAMPLING and not weighted:
        # SMOTE would interpolate between category codes of native categorical columns
        choices["prep_resample"] = ["none", "oversample"] if spec.encoding == "native" else ["none", "smote", "oversample"]
    if not ctx.is_classification:
        choices["prep_target"] = ["none", "yeo_johnson"] + (["log"] if y_min >= 0 else [])
        if spec.scale and schema.numeric:  # trees split on order: clipping only loses their tails
            choices["prep_clip"] = [False, True]
        if not weighted:  # a dropped row would leave its weight behind
            choices["prep_outlier_rows"] = ["keep", "drop"]
    return choices


def suggest(trial, ctx: SpaceContext, spec: Preprocessing, schema: Schema, y_min: float = 0.0,
            weighted: bool = False) -> dict:
    params = {}
    for name, options in _choices(ctx, spec, schema, y_min, weighted).items():
        params[name] = trial.suggest_categorical(name, options)
    if params.get("prep_select") == "univariate":
        params["prep_select_percentile"] = trial.suggest_int("prep_select_percentile", 10, 90, step=10)
    return params


def defaults(ctx: SpaceContext, spec: Preprocessing, schema: Schema, y_min: float = 0.0,
             weighted: bool = False) -> dict:
    return {name: options[0] for name, options in _choices(ctx, spec, schema, y_min, weighted).items()}


def split_params(params: dict) -> tuple[dict, dict]:
    """(preprocessing params, model params) from a trial's params."""
    prep = {k: v for k, v in params.items() if k.startswith(PREFIX)}
    model = {k: v for k, v in params.items() if not k.startswith(PREFIX)}
    return prep, model


def _target_encoding(spec: Preprocessing, ctx: SpaceContext | None) -> SkPipeline:
    """High-cardinality columns -> target statistics; fit_transform cross-fits (TARGET_ENCODER_CV
    folds inside the training rows), transform uses the whole fit. One column per class for multiclass;
    under a regression target transform, statistics of the transformed target."""
    task = ctx.task if ctx is not None else "binary"
    kind = {"regression": "continuous"}.get(task, task)  # explicit: an integer regression target is not classes
    from sklearn.model_selection import KFold, StratifiedKFold

    seed = ctx.seed if ctx is not None else 0
    if "cv_object" in str(TargetEncoder._parameter_constraints.get("cv")):  # scikit-learn >= 1.9: a splitter
        folds = (KFold if task == "regression" else StratifiedKFold)(TARGET_ENCODER_CV, shuffle=True, random_state=seed)
        encoder = TargetEncoder(target_type=kind, cv=folds)
    else:  # the same folds (stratified for classes), by the older arguments deprecated in 1.9
        encoder = TargetEncoder(target_type=kind, cv=TARGET_ENCODER_CV, shuffle=True, random_state=seed)
    steps = [("encode", encoder)]
    if spec.scale:
        steps.append(("scale", StandardScaler()))
    return SkPipeline(steps)


def _native_transformer(schema: Schema) -> ColumnTransformer:
    """encoding "native": numbers and dates with NaN left in, categories as pandas ``category``
    columns (tuner.data.categories); pandas output, so the model reads the categorical columns
    from their dtype. Every block must be dense for that output."""
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=float("nan"),
                           encoded_missing_value=float("nan"), min_frequency=MIN_CATEGORY_ROWS, max_categories=MAX_CODES)
    transformers = []
    if schema.numeric:
        transformers.append(("num", "passthrough", list(schema.numeric)))
    if schema.encoded:
        transformers.append(("cat", SkPipeline([("encode", codes), ("categories", CategoryCodes())]), list(schema.encoded)))
    if schema.datetime:
        transformers.append(("date", DatetimeFeatures(), list(schema.datetime)))
    if getattr(schema, "text", None):
        transformers.append(("text", TextTokens(), list(schema.text)))
    ct = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    # without categories, plain arrays: the ONNX converters of the boosters read unnamed columns
    return ct.set_output(transform="pandas") if schema.encoded else ct


def column_transformer(spec: Preprocessing, schema: Schema, prep: dict | None = None,
                       ctx: SpaceContext | None = None) -> ColumnTransformer:
    if spec.encoding == "native":
        return _native_transformer(schema)
    target_encoded = high_cardinality(schema) if (prep or {}).get("prep_high_cardinality") == "target" else []
    numeric_steps = [("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True))]
    if (prep or {}).get("prep_clip"):
        numeric_steps.insert(0, ("clip", QuantileClip()))
    if spec.scale:
        numeric_steps.append(("scale", StandardScaler()))
    if spec.encoding == "onehot":
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=MAX_ONEHOT_CATEGORIES,
            min_frequency=None, sparse_output=False,
        )
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    categorical_steps = [
        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__", keep_empty_features=True)),
        ("encode", encoder),
    ]
    transformers = []
    if schema.numeric:
        transformers.append(("num", SkPipeline(numeric_steps), list(schema.numeric)))
    encoded = [c for c in schema.encoded if c not in target_encoded]
    if encoded:
        transformers.append(("cat", SkPipeline(categorical_steps), encoded))
    if target_encoded:
        transformers.append(("target", _target_encoding(spec, ctx), target_encoded))
    if schema.datetime:
        date_steps = [("parts", DatetimeFeatures()),
                      ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True))]
        if spec.scale:
            date_steps.append(("scale", StandardScaler()))
        transformers.append(("date", SkPipeline(date_steps), list(schema.datetime)))
    if getattr(schema, "text", None):  # free text: word features, values in [0, 1] (tuner.data.text)
        transformers.append(("text", TextTokens(), list(schema.text)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def _selector(kind: str, percentile: int, ctx: SpaceContext):
    if kind == "univariate":
        score = f_classif if ctx.is_classification else f_regression
        return SelectPercentile(score, percentile=percentile)
    forest = ExtraTreesClassifier if ctx.is_classification else ExtraTreesRegressor
    return SelectFromModel(
        forest(n_estimators=50, max_features="sqrt", n_jobs=ctx.n_jobs, random_state=ctx.seed), threshold="0.5*mean"
    )


def _resampler(kind: str, ctx: SpaceContext):
    from imblearn.over_sampling import SMOTE, RandomOverSampler

    if kind == "smote":
        return SMOTE(k_neighbors=3, random_state=ctx.seed)
    return RandomOverSampler(random_state=ctx.seed)


def build_pipeline(model, prep: dict, ctx: SpaceContext, spec: Preprocessing, schema: Schema):
    """The full estimator of one trial: preprocessing + model (+ target transform)."""
    steps = [("prep", column_transformer(spec, schema, prep, ctx))]
    if prep.get("prep_poly"):
        steps.append(("poly", PolynomialFeatures(degree=2, include_bias=False)))
        steps.append(("poly_scale", StandardScaler()))
    if prep.get("prep_select", "none") != "none":
        steps.append(("select", _selector(prep["prep_select"], prep.get("prep_select_percentile", 50), ctx)))
    resample = prep.get("prep_resample", "none")
    drop = prep.get("prep_outlier_rows", "keep") == "drop"
    if resample != "none" or drop:
        from imblearn.pipeline import Pipeline as ImbPipeline  # resamples (or drops rows) during fit only

        steps.append(("resample", _resampler(resample, ctx) if resample != "none" else outlier_sampler(ctx.seed)))
        steps.append(("model", model))
        pipeline = ImbPipeline(steps)
    else:
        steps.append(("model", model))
        pipeline = SkPipeline(steps)
    target = prep.get("prep_target", "none")
    # the inverse clips to the training targets' transformed range: never NaN / inf (tuner.data.target_transforms)
    if target == "log":
        return TransformedTargetRegressor(regressor=pipeline, transformer=BoundedLog1p(), check_inverse=False)
    if target == "yeo_johnson":
        return TransformedTargetRegressor(regressor=pipeline, transformer=BoundedYeoJohnson())
    return pipeline


def describe(task: str) -> dict[str, str]:
    """The preprocessing dimensions, for ``tuner spaces``."""
    out = {
        "prep_poly": f"false | true: degree-2 features (linear families, ≤ {MAX_FEATURES_FOR_POLY} features, no free text)",
        "prep_select": f"none | univariate | model (≥ {MIN_FEATURES_FOR_SELECTION} features)",
        "prep_select_percentile": "int 10 – 90 step 10 (univariate selection)",
        "prep_high_cardinality": (f"onehot | ordinal (the family's encoding) | target: in-fold target encoding of "
                                  f"columns with > {MAX_ONEHOT_CATEGORIES} categories (one-hot and ordinal families)"),
    }
    if task == "regression":
        out["prep_target"] = "none | yeo_johnson | log (log only for targets ≥ 0)"
        out["prep_clip"] = "false | true: numeric features clipped at their in-fold 1 % / 99 % quantiles (scaled families)"
        out["prep_outlier_rows"] = (f"keep | drop: training rows an in-fold IsolationForest flags ({OUTLIER_SHARE:.0%}) "
                                    "left out of the fit (never scored rows; none with --weights)")
    else:
        out["prep_resample"] = (f"none | smote | oversample (imbalance ≥ {IMBALANCE_FOR_RESAMPLING:g}:1; "
                                "no smote for native categories; none with --weights)")
    return out
