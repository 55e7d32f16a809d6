"""A model family defined outside tuner, as a plug-in (the README's example): ridge regression with
a class of its own, so that its model file holds a type tuner does not trust by default."""

from sklearn.linear_model import Ridge

from search_spaces import Preprocessing, SearchSpace


class PluginRidge(Ridge):
    """Ridge, under this package's name."""


def suggest(trial, ctx):
    return {"alpha": trial.suggest_float("alpha", 1e-3, 100.0, log=True)}


def build(params, ctx):
    return PluginRidge(alpha=params.get("alpha", 1.0))


SPACE = SearchSpace(
    name="plugin_ridge", tasks=("regression",), suggest=suggest, build=build,
    defaults=lambda ctx: {"alpha": 1.0}, describe={"alpha": "log-float 1e-3 – 100"},
    preprocessing=Preprocessing(scale=True, encoding="onehot"),
)

NOT_A_SPACE = {"name": "plugin_ridge"}
TAKEN = SearchSpace(name="lasso", tasks=("regression",), suggest=suggest, build=build,
                    defaults=lambda ctx: {}, describe={})
