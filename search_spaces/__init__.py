"""Registry of model families.

Each family is a module of this package with a ``SPACE``. Modules are imported
lazily so that a family with heavy dependencies (the Keras MLP) costs nothing
until it is used.

Plug-in families live outside this package and fill the same :class:`SearchSpace` shape:
an installed distribution declares them as entry points of the group ``tuner.search_spaces``
(``name = "my_pkg.my_module:SPACE"``), or a run names one as ``--models my_pkg.my_module:SPACE``
(:func:`register`). Either way the registry maps the family's name to ``"module:ATTRIBUTE"``
and :func:`check_space` checks the contract when the family is first loaded. Plug-ins are never
default families: a run uses one only when ``--models`` names it.
"""

from __future__ import annotations

import importlib
import importlib.util

from ._base import TASKS, Preprocessing, SearchSpace, SpaceContext

__all__ = [
    "TASKS",
    "Preprocessing",
    "SearchSpace",
    "SpaceContext",
    "FAMILIES",
    "available_spaces",
    "get_space",
    "register",
    "check_space",
    "PluginError",
    "PLUGIN_GROUP",
    "is_plugin",
]

PLUGIN_GROUP = "tuner.search_spaces"


class PluginError(ValueError):
    """A plug-in family cannot be loaded or does not fill the SearchSpace contract."""

# name -> module; the order is the order families are shown and interleaved.
FAMILIES: dict[str, str] = {
    "logistic_regression": "search_spaces.logistic_regression",
    "lasso": "search_spaces.lasso",
    "elastic_net": "search_spaces.elastic_net",
    "random_forest": "search_spaces.random_forest",
    "svm": "search_spaces.svm",
    "xgboost": "search_spaces.xgboost",
    "hist_gradient_boosting": "search_spaces.hist_gradient_boosting",
    "keras_mlp": "search_spaces.keras_mlp",
}

# Families a run uses when --models is not given (keras_mlp is opt-in: it is slow
# to import and to train, and rarely wins on small tabular data).
# Cheapest first: under a clock, every family gets its first result in this order.
DEFAULT_FAMILIES = ("logistic_regression", "lasso", "xgboost", "hist_gradient_boosting", "random_forest", "svm")


BUILT_IN = frozenset(FAMILIES)
RESERVED = frozenset({"ensemble"})  # the leaderboard's own row
_entry_points_read = False
_checked: dict[tuple[str, str], SearchSpace] = {}


def _module_exists(ref: str) -> bool:
    try:
        return importlib.util.find_spec(ref.partition(":")[0]) is not None
    except (ImportError, ValueError):  # a parent package that is not installed
        return False


def _read_entry_points() -> None:
    """Add the families installed distributions declare (group ``tuner.search_spaces``), once."""
    global _entry_points_read
    if _entry_points_read:
        return
    _entry_points_read = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        FAMILIES.setdefault(ep.name, ep.value)


def is_plugin(name: str) -> bool:
    return name not in BUILT_IN


def _load(ref: str) -> SearchSpace:
    module, _, attr = ref.partition(":")
    try:
        space = getattr(importlib.import_module(module), attr or "SPACE")
    except ImportError as exc:
        raise PluginError(f"cannot import the module of model family {ref!r}: {exc}; install it or fix the name") from None
    except AttributeError:
        raise PluginError(f"module {module!r} has no {attr or 'SPACE'!r}; give MODULE:ATTRIBUTE naming a SearchSpace") from None
    return space


def get_space(name: str) -> SearchSpace:
    """Return the family ``name``; an unknown name raises ``KeyError`` listing the valid ones,
    a plug-in that breaks the contract raises :class:`PluginError`."""
    if name not in FAMILIES:
        _read_entry_points()
    ref = FAMILIES.get(name)
    if ref is None or not _module_exists(ref):
        valid = ", ".join(n for n, m in FAMILIES.items() if _module_exists(m))
        raise KeyError(f"unknown model family {name!r}; valid families: {valid}")
    if name in BUILT_IN:
        return importlib.import_module(ref).SPACE
    if (name, ref) not in _checked:
        space = _load(ref)
        check_space(space, ref, name)
        _checked[(name, ref)] = space
    return _checked[(name, ref)]


def register(ref: str) -> str:
    """Register the plug-in family ``"module:ATTRIBUTE"`` (checked); returns its name."""
    space = _load(ref)
    name = getattr(space, "name", None)
    check_space(space, ref, name if isinstance(name, str) else None)
    FAMILIES[name] = ref
    _checked[(name, ref)] = space
    return name


def add_families(plugins: dict[str, str]) -> None:
    """Make a stored run's plug-in families known (not imported until used)."""
    for name, ref in plugins.items():
        FAMILIES.setdefault(name, ref)


def check_space(space, ref: str, name: str | None) -> None:
    """The SearchSpace contract, checked on a plug-in when it is first loaded: raises
    :class:`PluginError` naming what is wrong."""
    where = f"model family {ref!r}"
    if not isinstance(space, SearchSpace):
        raise PluginError(f"{where} is a {type(space).__name__}, not a search_spaces.SearchSpace")
    if not space.name.isidentifier() or (name is not None and space.name != name):
        raise PluginError(f"{where}: its name {space.name!r} must be an identifier"
                          + (f" equal to the registered name {name!r}" if name is not None else ""))
    if space.name in BUILT_IN or space.name in RESERVED:
        raise PluginError(f"{where}: the name {space.name!r} is taken by tuner; choose another")
    if not space.tasks or any(t not in TASKS for t in space.tasks):
        raise PluginError(f"{where}: tasks {space.tasks!r} must be some of {', '.join(TASKS)}")
    for part in ("suggest", "build", "defaults"):
        if not callable(getattr(space, part)):
            raise PluginError(f"{where}: {part} must be a function")
    if not isinstance(space.preprocessing, Preprocessing) or space.preprocessing.encoding not in (
            "onehot", "ordinal", "native"):
        raise PluginError(f"{where}: preprocessing must be a search_spaces.Preprocessing "
                          "with encoding onehot, ordinal or native")
    for task in space.tasks:
        ctx = SpaceContext(task=task, n_rows=100, n_features=3, n_classes=0 if task == "regression" else (
            2 if task == "binary" else 3))
        try:
            params = space.defaults(ctx)
            model = space.build(params, ctx)
        except Exception as exc:  # the plug-in's own code: any error is the plug-in's
            raise PluginError(f"{where}: defaults / build fail for a {task} task: {type(exc).__name__}: {exc}") from None
        if not isinstance(params, dict):
            raise PluginError(f"{where}: defaults(ctx) must return a dict (got {type(params).__name__})")
        needs = ("fit", "predict") + (("predict_proba",) if task != "regression" else ())
        missing = [m for m in needs if not callable(getattr(model, m, None))]
        if missing:
            raise PluginError(f"{where}: build() for a {task} task gives a {type(model).__name__} without "
                              f"{', '.join(missing)}")


def available_spaces(task: str | None = None) -> list[SearchSpace]:
    """Every installed family, or those supporting ``task`` (a broken plug-in is left out:
    naming it in ``--models`` says why)."""
    _read_entry_points()
    spaces = []
    for n, m in list(FAMILIES.items()):
        if not _module_exists(m):
            continue
        try:
            spaces.append(get_space(n))
        except PluginError:
            continue
    return [s for s in spaces if task is None or s.supports(task)]


def default_family_names(task: str) -> list[str]:
    return [n for n in DEFAULT_FAMILIES if _module_exists(FAMILIES[n]) and get_space(n).supports(task)]
