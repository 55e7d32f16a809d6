"""Workaround for a TensorFlow memory leak, through TensorFlow's private gradient registry.

The one place tuner touches TensorFlow internals; the rest of the package uses public
Keras / TensorFlow APIs only.

What it works around: every ``model.fit`` traces its train and test steps; inside them the
distribution strategy's ``all_reduce`` is a ``tf.custom_gradient``, which in graph mode
registers a ``CustomGradient-N`` entry in TensorFlow's global gradient registry. The entry
is never removed and keeps the whole traced graph alive (keras-team/keras#17458,
tensorflow/tensorflow#61791; ``keras.backend.clear_session()`` does not help), so a worker
process grows with every trial. Once tracing is over the entry is never looked up again:
:func:`release_traced_step_gradients` drops the entries a fit added whose function closes
over ``all_reduce``.

What it relies on: ``tensorflow.python.framework.ops._gradient_registry._registry``, a dict
``{name: {"type": function, ...}}``; checked on the first fit of the process. Checked on
TensorFlow 2.20 and 2.21 (``CHECKED_UP_TO``); a later version is used as long as the
registry has that shape.

Fallback, stated once per process as a WARNING log line (logger
``tuner.models.keras_mlp.tf_compat``; a log line, not a Python warning, because the
driver records and filters the warnings raised during a fit): when the registry is missing
or has another shape, or pruning it fails, the workaround is skipped. Fits and predictions
are unaffected; the consequence is that memory grows with every keras_mlp fit, as it
would without the workaround (long studies may want fewer trials per worker process).

Retire it: when a TensorFlow release removes these entries itself, set ``FIXED_IN`` to that
version (from it on, nothing is done and nothing is said); delete this module once the
minimum TensorFlow in pyproject.toml (now ``tensorflow>=2.20``) reaches ``FIXED_IN``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

# First TensorFlow release that drops the entries itself; None: no release does yet.
FIXED_IN: tuple[int, int] | None = None
# Last TensorFlow release the private registry's shape was checked against.
CHECKED_UP_TO = (2, 21)

_log = logging.getLogger(__name__)
_ENTRY_PREFIX = "CustomGradient-"
_CLOSURE_NEEDLE = "all_reduce"
_UNCHECKED = object()
_registry_state: object = _UNCHECKED  # dict (workaround active), None (off) or _UNCHECKED


@dataclass(frozen=True)
class GradientSnapshot:
    """The registry's keys before a fit (registry None: the workaround is off)."""

    registry: dict | None
    before: frozenset = field(default_factory=frozenset)
    tf_version: str = "?"


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _skip(tf_version: str, reason: str) -> None:
    """Turn the workaround off for this process, saying so once."""
    global _registry_state
    _registry_state = None
    _log.warning(
        "keras_mlp on TensorFlow %s: %s; skipping the workaround for TensorFlow's gradient-registry "
        "leak (tensorflow/tensorflow#61791, tuner.models.keras_mlp.tf_compat): fits are unaffected, "
        "but memory grows with every keras_mlp fit in this process", tf_version, reason,
    )


def _private_registry():
    """The private object the workaround edits; raises when TensorFlow moved it."""
    from tensorflow.python.framework import ops as tf_ops

    return tf_ops._gradient_registry._registry


def _gradient_registry(tf_version: str) -> dict | None:
    """The private registry when the workaround applies to this TensorFlow, else None."""
    global _registry_state
    if _registry_state is not _UNCHECKED:
        return _registry_state  # type: ignore[return-value]
    if FIXED_IN is not None and _major_minor(tf_version) >= FIXED_IN:
        _registry_state = None  # TensorFlow cleans up itself: nothing to do
        return None
    try:
        registry = _private_registry()
    except Exception as exc:  # the private API moved
        _skip(tf_version, f"tensorflow.python.framework.ops._gradient_registry._registry is not there "
                          f"({type(exc).__name__}: {exc})")
        return None
    if not isinstance(registry, dict):
        _skip(tf_version, f"TensorFlow's private gradient registry is a {type(registry).__name__}, not a dict")
        return None
    _registry_state = registry
    return registry


def snapshot(tf) -> GradientSnapshot:
    """Record the gradient registry's entries before a fit (``tf``: the imported tensorflow)."""
    version = str(getattr(tf, "__version__", "?"))
    registry = _gradient_registry(version)
    return GradientSnapshot(registry, frozenset(registry) if registry is not None else frozenset(), version)


def _closure_mentions(fn, needle: str, depth: int = 4) -> bool:
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if callable(value) and hasattr(value, "__code__"):
            if needle in getattr(value, "__qualname__", "") or (
                depth > 0 and _closure_mentions(value, needle, depth - 1)
            ):
                return True
    return False


def release_traced_step_gradients(snap: GradientSnapshot) -> None:
    """Drop the ``all_reduce`` custom-gradient entries added since ``snap`` (see the module doc)."""
    registry = snap.registry
    if registry is None or _registry_state is None:
        return
    try:
        for key in [k for k in list(registry) if k not in snap.before]:
            if isinstance(key, str) and key.startswith(_ENTRY_PREFIX):
                entry = registry.get(key)
                fn = entry.get("type") if isinstance(entry, dict) else None
                if fn is not None and _closure_mentions(fn, _CLOSURE_NEEDLE):
                    registry.pop(key, None)
    except Exception as exc:  # never let a workaround break a fit
        _skip(snap.tf_version, f"pruning TensorFlow's private gradient registry failed ({type(exc).__name__}: {exc})")
