"""Import TensorFlow and Keras lazily and quietly, and set TensorFlow's thread counts.

Why: importing TensorFlow is slow and prints start-up lines, so nothing imports it until
the first ``fit`` or unpickling of a Keras MLP. Before that first import, unless the
environment variable ``TUNER_VERBOSE`` is set, TensorFlow's C++ start-up logs are
silenced (``TF_CPP_MIN_LOG_LEVEL=3``; the few absl lines printed before its logging is
initialised, such as the CUDA and oneDNN notices, are dropped by pointing file
descriptor 2 at ``/dev/null`` for the duration of the import).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

_IMPORT_LOCK = threading.Lock()
_KERAS = None
_TF = None
_THREADS_CONFIGURED = False


def _verbose() -> bool:
    return bool(os.environ.get("TUNER_VERBOSE"))


@contextlib.contextmanager
def _stderr_fd_silenced():
    """Point the OS-level stderr (fd 2) at /dev/null for the duration.

    TensorFlow's native libraries print a few lines through absl before its
    logging is initialised; ``TF_CPP_MIN_LOG_LEVEL`` does not reach them.
    """
    try:
        sys.stderr.flush()
    except Exception:
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (e.g. some embedded interpreters)
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        os.close(saved)
        yield
        return
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras():
    """Import and return ``(keras, tensorflow)``, quietly unless ``TUNER_VERBOSE``.

    Sets ``KERAS_BACKEND=tensorflow`` unless the user chose a backend already
    (this family needs the TensorFlow backend).
    """
    global _KERAS, _TF
    if _KERAS is not None:
        return _KERAS, _TF
    with _IMPORT_LOCK:
        if _KERAS is not None:
            return _KERAS, _TF
        verbose = _verbose()
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        already = "tensorflow" in sys.modules
        if not verbose:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        silence = contextlib.nullcontext() if (verbose or already) else _stderr_fd_silenced()
        try:
            with silence:
                import keras
                import tensorflow as tf
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "The keras_mlp model family needs TensorFlow (with Keras 3): "
                "pip install 'tuner[keras]' (or pip install 'tensorflow>=2.20')"
            ) from exc
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                "The keras_mlp model family needs the TensorFlow backend of Keras, "
                f"but KERAS_BACKEND is {keras.backend.backend()!r}."
            )
        if not verbose:
            keras.utils.disable_interactive_logging()
            tf.get_logger().setLevel("ERROR")
        _KERAS, _TF = keras, tf
    return _KERAS, _TF


def _resolve_threads(n_jobs: int | None) -> int:
    """joblib convention -> TensorFlow thread count (0 = let TF decide)."""
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        cpus = os.cpu_count() or 1
        if n_jobs == -1:
            return 0
        return max(1, cpus + 1 + n_jobs)
    return int(n_jobs)


def configure_tensorflow(n_jobs: int | None = 1):
    """Import TensorFlow quietly and set its intra/inter-op threads from ``n_jobs``.

    Thread counts can only be set before TensorFlow's runtime initialises, so
    this takes effect once per process (the first call wins; later calls and a
    runtime already initialised by someone else are silently ignored).
    Returns ``(keras, tensorflow)``.
    """
    global _THREADS_CONFIGURED
    keras, tf = import_keras()
    if not _THREADS_CONFIGURED:
        with _IMPORT_LOCK:
            if not _THREADS_CONFIGURED:
                threads = _resolve_threads(n_jobs)
                try:
                    tf.config.threading.set_intra_op_parallelism_threads(threads)
                    tf.config.threading.set_inter_op_parallelism_threads(threads)
                except (RuntimeError, ValueError):
                    pass  # runtime already initialised: keep what it has
                _THREADS_CONFIGURED = True
    return keras, tf
