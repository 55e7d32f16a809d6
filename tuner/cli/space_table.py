"""`tuner spaces --space FILE`: what each family named in a --space file searches with it."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from tuner.cli.common import out


def print_space_file(path: Path, task: str | None) -> None:
    """One table per family of the file: each model parameter's own range and the range the file leaves.

    The data is not known here, so ``prep_*`` keys are shown as written; ``tuner run`` checks them
    against what the data offers (and every key again) before it writes anything."""
    import search_spaces
    from search_spaces import SpaceContext
    from tuner.search import space_file

    overrides = space_file.read(path)
    families = [f for f in overrides if f in search_spaces.FAMILIES]

    def model_only(family: str) -> dict:
        space = search_spaces.get_space(family)
        kind = task if task in space.tasks else space.tasks[0]
        ctx = SpaceContext(task=kind, n_rows=1000, n_features=10, n_classes=0 if kind == "regression" else 2)
        return space_file.distributions(family, ctx)

    model_keys = {f: {k: v for k, v in t.items() if not k.startswith("prep_")} if isinstance(t, dict) else t
                  for f, t in overrides.items()}
    checked = space_file.check(model_keys, families or list(overrides), model_only)
    for family, table_spec in checked.items():
        dists = model_only(family)
        table = Table(title=f"{family} with {path}", title_justify="left")
        for column in ("hyperparameter", "family's range", "searched"):
            table.add_column(column)
        for name, dist in dists.items():
            spec = table_spec["params"].get(name)
            table.add_row(name, _describe(dist), _searched(spec) if spec else "as the family")
        for name, value in overrides[family].items():
            if name.startswith("prep_"):
                table.add_row(name, "(depends on the data)", f"{value!r} (checked when the run starts)")
        if table_spec["defaults"]:
            table.caption = f"first configuration tried: the family's defaults with {table_spec['defaults']}"
        out.print(table)


def _describe(dist) -> str:
    if hasattr(dist, "choices"):
        return " | ".join(map(str, dist.choices))
    return f"{'log ' if dist.log else ''}{dist.low} – {dist.high}"


def _searched(spec: dict) -> str:
    if "fixed" in spec:
        return f"fixed at {spec['fixed']!r}"
    if "choices" in spec:
        return " | ".join(map(str, spec["choices"]))
    return f"{spec['low']} – {spec['high']}"


__all__ = ["print_space_file"]
