"""The package layout holds: imports flow one way, modules stay small, Optuna's private parts
are reached in one place, nothing under ``tuner/results/`` writes to a storage, and every module's
tests are where docs/ARCHITECTURE.md ("Where the tests are") says.

Every module of ``tuner/`` and ``search_spaces/`` is parsed with ``ast`` (nothing is imported)
and every import in it counts: at the top, inside functions, relative (``from . import x``)
and by name (``importlib.import_module("tuner.x")``, ``__import__``). A package's
``__init__`` is not counted as imported along with its modules (``tuner/__init__`` imports
the API lazily, which would otherwise put every module on a cycle through it).

The layers, bottom first (a module may import its own package and anything lower)::

    tuner.errors, tuner.models     import nothing of tuner (models: the estimators skops loads)
    search_spaces                  the plug-ins: may import tuner.models, nothing else of tuner
    tuner.config                   RunConfig and the checks of its options
    tuner.storage                  runs in an Optuna storage, locks, the Optuna adapter
    tuner.data                     tables, schema, preprocessing, target transforms
    tuner.evaluation               folds, metrics, cross-validation, pruning, statistics
    tuner.model_types              the stable names of the classes a model folder stores
    tuner.execution                the worker loop, budget, heartbeats, local workers
    tuner.search, tuner.results, tuner.deploy
                                   not each other, except deploy -> results (export takes
                                   the winner and its leaderboard row from the leaderboard)
    tuner.workflow                 the run object every entry point drives, and the one writer
                                   of what is derived from trials (tuner.results only reads)
    entry points                   tuner/__init__, tuner/__main__, tuner.api, tuner.cli.*,
                                   tuner.estimators.* (the scikit-learn estimators, over tuner.api),
                                   tuner._helper_process

The re-export shims for old skops type paths (``tuner.features``, ``tuner.target_transforms``,
``search_spaces._keras_estimator``) may import what they re-export, and nothing imports them.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tuner", "search_spaces")
SHIMS = frozenset({"tuner.features", "tuner.target_transforms", "search_spaces._keras_estimator"})
OPTUNA_ADAPTER = "tuner.storage.optuna_adapter"
MAX_LINES = 500

ENTRY = "entry points"
LAYERS: list[tuple[str, ...]] = [
    ("tuner.errors", "tuner.models"),
    ("search_spaces",),
    ("tuner.config",),
    ("tuner.storage",),
    ("tuner.data",),
    ("tuner.evaluation", "tuner.model_types"),
    ("tuner.execution",),
    ("tuner.search", "tuner.results", "tuner.deploy"),
    ("tuner.workflow",),
    (ENTRY,),
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}
# Units that may import only these units, whatever their layer allows.
ONLY = {"tuner.errors": frozenset(), "tuner.models": frozenset(), "search_spaces": frozenset({"tuner.models"})}
# Imports allowed between different units of the same layer.
SAME_LAYER_ALLOWED = frozenset({("tuner.deploy", "tuner.results")})


# -- reading the modules ----------------------------------------------------------------------
def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages (``tuner/cli/__init__.py``
    is ``tuner.cli``)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(dotted: str, modules) -> str | None:
    """The module of ours that importing ``dotted`` runs: its longest prefix that is a module."""
    parts = dotted.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _import_by_name(node: ast.Call) -> str | None:
    """The constant module name of ``importlib.import_module("x")`` / ``import_module("x")`` /
    ``__import__("x")``, else None."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__") or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
        return arg.value
    return None


def imports_of(name: str, source: str, modules, *, is_package: bool = False) -> list[tuple[str, int]]:
    """(imported module of ours, line) for every import in ``source``, the module ``name``."""
    package = name if is_package else name.rpartition(".")[0]
    found = []

    def add(dotted: str | None, line: int) -> None:
        target = _resolve(dotted, modules) if dotted else None
        if target is not None and target != name:
            found.append((target, line))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                submodule = f"{origin}.{alias.name}" if origin else alias.name
                add(submodule if submodule in modules else origin, node.lineno)
        elif isinstance(node, ast.Call):
            add(_import_by_name(node), node.lineno)
    return found


@lru_cache(maxsize=1)
def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line importing it}, over tuner and search_spaces."""
    modules = module_files()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imports_of(name, path.read_text(encoding="utf-8"), modules,
                                       is_package=path.name == "__init__.py"):
            edges.setdefault(target, line)
        graph[name] = edges
    return graph


def _where(name: str, line: int) -> str:
    path = module_files()[name]
    return f"{path.relative_to(ROOT)}:{line}"


# -- (a) cycles -------------------------------------------------------------------------------
def cycles(graph: dict[str, dict[str, int] | set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, first repeated last) through each group of ``tangles``."""
    return sorted(_a_cycle(graph, g) for g in tangles(graph))


def tangles(graph: dict[str, dict[str, int] | set[str]]) -> list[set[str]]:
    """The groups of two or more modules that all reach each other through imports (strongly
    connected components, Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # iterative Tarjan: deep graphs do not hit the recursion limit
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        group.add(w)
                        if w == node:
                            break
                    if len(group) > 1:
                        groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups, key=min)


def _a_cycle(graph, group: set[str]) -> list[str]:
    """A shortest cycle through the first module of ``group`` (breadth first, inside the group)."""
    start = min(group)
    previous = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                path = [v]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return path[::-1] + [start]
            if w in group and w not in previous:
                previous[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group always has one


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}, "g": {"g"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_import_reader_sees_every_kind_of_import():
    modules = {"tuner", "tuner.results", "tuner.results.holdout", "tuner.results.leaderboard", "tuner.config",
               "tuner.errors", "tuner.storage", "tuner.storage.runs", "search_spaces", "search_spaces._base"}
    source = (
        "import os\n"
        "from . import holdout\n"
        "from .. import config\n"
        "from ..storage.runs import open_storage\n"
        "def f():\n"
        "    import importlib\n"
        "    from tuner.errors import TunerError\n"
        "    return importlib.import_module('search_spaces._base')\n"
    )
    found = {target for target, _ in imports_of("tuner.results.leaderboard", source, modules)}
    assert found == {"tuner.results.holdout", "tuner.config", "tuner.storage.runs", "tuner.errors",
                     "search_spaces._base"}
    assert {t for t, _ in imports_of("search_spaces", "from ._base import X\n", modules, is_package=True)} == {
        "search_spaces._base"}


def test_no_import_cycles():
    graph = import_graph()
    found = tangles(graph)
    lines = []
    for group, cycle in zip(found, (_a_cycle(graph, g) for g in found)):
        lines.append(" -> ".join(cycle) + "; the imports among " + ", ".join(sorted(group)) + ":")
        lines += [f"    {a} -> {b} ({_where(a, graph[a][b])})" for a in sorted(group) for b in sorted(graph[a])
                  if b in group]
    assert not found, "import cycles between tuner modules:\n  " + "\n  ".join(lines)


# -- (b) layers -------------------------------------------------------------------------------
def unit(module: str) -> str:
    """The layer unit of a module: a sub-package of tuner, a top-level module, search_spaces
    or the entry points."""
    if module in ("tuner", "tuner.api", "tuner._helper_process", "tuner.__main__") or module.startswith(
            ("tuner.cli", "tuner.estimators")):
        return ENTRY
    if module.split(".")[0] == "search_spaces":
        return "search_spaces"
    return ".".join(module.split(".")[:2])


def layer_violations(graph: dict[str, dict[str, int]]) -> list[tuple[str, str, str]]:
    """(importer, imported, why) for every import against the layers."""
    out = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            if target in SHIMS:
                out.append((source, target, "imports a re-export shim (kept for old model files): "
                                            "import the module it re-exports"))
                continue
            if source in SHIMS:
                continue
            a, b = unit(source), unit(target)
            if a not in LAYER or b not in LAYER:
                out.append((source, target, f"{a if a not in LAYER else b} is in no layer: add it to LAYERS"))
                continue
            if a == b:
                continue
            if a in ONLY:
                if b not in ONLY[a]:
                    allowed = ", ".join(sorted(ONLY[a])) or "nothing of tuner"
                    out.append((source, target, f"{a} may import {allowed}"))
                continue
            if LAYER[b] < LAYER[a] or (a, b) in SAME_LAYER_ALLOWED:
                continue
            where = "the same layer as" if LAYER[b] == LAYER[a] else "a layer above"
            out.append((source, target, f"{b} is {where} {a}"))
    return out


def test_the_layer_check_finds_upward_and_sideways_imports():
    allowed = {
        ("tuner.results.leaderboard", "tuner.evaluation.stats"),
        ("tuner.deploy.export", "tuner.results.leaderboard"),
        ("tuner.evaluation.estimator", "tuner.data.dataset"),
        ("search_spaces.svm", "tuner.models.keras_mlp"),
        ("tuner.features", "tuner.data.features"),
        ("tuner.cli.app", "tuner.search.driver"),
        ("tuner.config", "search_spaces"),
    }
    refused = {
        ("tuner.storage.runs", "tuner.execution.heartbeat"),
        ("tuner.results.leaderboard", "tuner.search.driver"),
        ("tuner.data.dataset", "tuner.evaluation.metrics"),
        ("search_spaces.svm", "tuner.errors"),
        ("tuner.models.keras_mlp", "tuner.errors"),
        ("tuner.config", "tuner.evaluation.metrics"),
        ("tuner.cli.app", "tuner.features"),
        ("tuner.results.holdout", "tuner.deploy.export"),
    }
    graph = defaultdict(dict)
    for a, b in allowed | refused:
        graph[a][b] = 1
    assert {(a, b) for a, b, _ in layer_violations(graph)} == refused


def test_imports_follow_the_layers():
    graph = import_graph()
    found = layer_violations(graph)
    lines = [f"{a} imports {b} ({_where(a, graph[a][b])}): {why}" for a, b, why in found]
    assert not found, "imports against the layers (tests/test_architecture.py, module doc):\n  " + "\n  ".join(lines)


# -- (c) size ---------------------------------------------------------------------------------
def test_modules_stay_small():
    big = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in module_files().items()}
    big = {name: n for name, n in big.items() if n > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them by what they are for): " + ", ".join(
        f"{module_files()[name].relative_to(ROOT)} ({n})" for name, n in sorted(big.items()))


# -- (d) Optuna's private parts ----------------------------------------------------------------
@lru_cache(maxsize=1)
def optuna_private_names() -> frozenset[str]:
    """The private names the installed Optuna defines: modules and packages (``_rdb``), classes
    and functions (``_CachedStorage``), attributes it sets (``_storage``, ``_study_id``)."""
    root = Path(importlib.util.find_spec("optuna").origin).parent
    names = set()

    def private(n: str) -> bool:
        return n.startswith("_") and not n.startswith("__")

    for path in root.rglob("*.py"):
        names.update(p for p in path.relative_to(root).with_suffix("").parts if private(p))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and private(node.name):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and private(node.attr):
                names.add(node.attr)
    return frozenset(names)


def _private_optuna_module(dotted: str) -> bool:
    parts = dotted.split(".")
    return parts[0] == "optuna" and any(p.startswith("_") and not p.startswith("__") for p in parts[1:])


def private_optuna_uses(source: str, private_names) -> list[tuple[int, str]]:
    """(line, what) for each reach into Optuna's private parts in ``source``: an import of or
    from a private module, a private name imported from Optuna, a private module named in a
    string, ``optuna.x._y``, and ``obj._name`` / ``getattr(obj, "_name")`` with a private name of
    Optuna's on anything but ``self`` / ``cls`` (a class's own attributes)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, f"import {a.name}") for a in node.names if _private_optuna_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "optuna":
            if _private_optuna_module(node.module):
                out.append((node.lineno, f"from {node.module} import ..."))
            else:
                out += [(node.lineno, f"from {node.module} import {a.name}") for a in node.names
                        if a.name.startswith("_")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value:
            if _private_optuna_module(node.value):
                out.append((node.lineno, repr(node.value)))
        elif isinstance(node, ast.Attribute) and node.attr in private_names:
            receiver = node.value
            if not (isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")):
                out.append((node.lineno, f".{node.attr}"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in private_names):
            out.append((node.lineno, f"{node.func.id}(..., {node.args[1].value!r})"))
    return sorted(set(out))


def test_the_private_access_check_finds_reaches():
    source = (
        "import optuna\n"
        "from optuna.storages._rdb import models\n"
        "from optuna.storages import _CachedStorage, RDBStorage\n"
        "importlib.import_module('optuna.storages._rdb.models')\n"
        "x = optuna.storages._CachedStorage\n"
        "y = study._storage.get_trial(trial._trial_id)\n"
        "z = getattr(study, '_study_id')\n"
        "class W:\n"
        "    def f(self):\n"
        "        return self._storage, optuna.Study, trial.number\n"
    )
    found = private_optuna_uses(source, frozenset({"_storage", "_trial_id", "_study_id", "_CachedStorage", "_rdb"}))
    assert [line for line, _ in found] == [2, 3, 4, 5, 6, 6, 7]


def test_optuna_private_parts_only_in_the_adapter():
    names = optuna_private_names()
    assert {"_storage", "_study_id", "_trial_id", "_CachedStorage", "_rdb"} <= names  # the Optuna read is right
    found = defaultdict(list)
    for name, path in module_files().items():
        if name != OPTUNA_ADAPTER:
            for line, what in private_optuna_uses(path.read_text(encoding="utf-8"), names):
                found[str(path.relative_to(ROOT))].append(f"{line}: {what}")
    assert not found, (f"Optuna's private parts used outside {OPTUNA_ADAPTER} (go through it):\n  "
                       + "\n  ".join(f"{path}: {'; '.join(uses)}" for path, uses in sorted(found.items())))


# -- (e) tuner.results only reads ---------------------------------------------------------------
# Writes to an Optuna study or storage: Study / Trial / BaseStorage methods, the artifact API, and
# the functions of tuner.storage that write.
STORAGE_WRITES = frozenset({
    "set_user_attr", "set_system_attr", "tell", "optimize", "enqueue_trial", "add_trial", "add_trials", "ask",
    "create_study", "delete_study", "copy_study", "create_new_study", "create_new_trial", "set_study_user_attr",
    "set_study_system_attr", "set_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
    "set_trial_user_attr", "set_trial_system_attr", "upload_artifact", "report",
    "save_config", "start_run", "store_ensemble", "score_best", "ensure_scores", "record_budget",
    "start_clock", "fit_and_keep", "save_layout",
})
READ_ONLY = "tuner.results"


def storage_writes(source: str) -> list[tuple[int, str]]:
    """(line, name) of every call in ``source`` whose callee is named like a storage write
    (``x.set_user_attr(...)``, ``start_run(...)``)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name in STORAGE_WRITES:
                out.append((node.lineno, name))
    return out


def test_the_write_check_finds_writes():
    source = ("study.set_user_attr('a', 1)\nx = study.user_attrs.get('a')\nstart_run(s, ds, run='r')\n"
              "optuna.create_study(storage=s)\nrows = lb.build(s, c)\n")
    assert storage_writes(source) == [(1, "set_user_attr"), (3, "start_run"), (4, "create_study")]


def test_nothing_under_results_writes_to_a_storage():
    found = {str(path.relative_to(ROOT)): storage_writes(path.read_text(encoding="utf-8"))
             for name, path in module_files().items() if name == READ_ONLY or name.startswith(READ_ONLY + ".")}
    found = {path: uses for path, uses in found.items() if uses}
    assert not found, ("tuner/results/ only reads (tuner.workflow writes what is derived from trials):\n  "
                       + "\n  ".join(f"{p}: " + "; ".join(f"{line}: {n}()" for line, n in uses)
                                     for p, uses in sorted(found.items())))


# -- where the tests are ------------------------------------------------------------------------
def _where_tested() -> dict[str, list[str]]:
    """docs/ARCHITECTURE.md, "Where the tests are": module file -> the test files named for it."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text().split("## Where the tests are", 1)[1]
    table = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        tests = re.findall(r"`([^`]+)`", cells[1])
        folder = ""
        for name in re.findall(r"`([^`]+)`", cells[0]):
            if "/" in name:
                folder = name.rsplit("/", 1)[0]
            else:
                name = f"{folder}/{name}"
            for path in sorted(ROOT.glob(name)) or [ROOT / name]:
                table[str(path.relative_to(ROOT))] = tests
    return table


def test_every_module_has_its_tests_mirrored_or_said_where():
    table = _where_tested()
    unplaced, missing = [], []
    for path in sorted((ROOT / "tuner").rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        rel = path.relative_to(ROOT / "tuner")
        mirrored = ROOT / "tests" / rel.parent / f"test_{path.stem}.py"
        name = str(path.relative_to(ROOT))
        if not mirrored.exists() and name not in table:
            unplaced.append(name)
    for module, tests in table.items():
        if not (ROOT / module).exists():
            missing.append(f"{module} (no such module)")
        missing += [f"{t} (for {module})" for t in tests if not (ROOT / t).exists()]
    assert not unplaced, ("modules with neither tests/<package>/test_<module>.py nor a row in docs/ARCHITECTURE.md, "
                          f"'Where the tests are': {unplaced}")
    assert not missing, f"docs/ARCHITECTURE.md, 'Where the tests are', names what does not exist: {missing}"
