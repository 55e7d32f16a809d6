"""``tuner dashboard``: optuna-dashboard, the live Optuna web UI, on a run's storage.

A run is ordinary Optuna studies (``RUN`` holds the configuration, ``RUN::family`` the
trials of each family), so optuna-dashboard shows them as they are, live while workers
add trials. optuna-dashboard is an optional extra: ``pip install 'tuner[dashboard]'``.
"""

from __future__ import annotations

import socket
from typing import Callable

from tuner.errors import TunerError
from tuner.storage.runs import DEFAULT_STORAGE, SEPARATOR, open_storage

INSTALL_HINT = "pip install 'tuner[dashboard]'"


def _run_server():
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise TunerError(f"tuner dashboard needs optuna-dashboard: {INSTALL_HINT}") from None
    return run_server


def address(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/dashboard/"


def _check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:
        raise TunerError(f"--port must be between 1 and 65535 (got {port})")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise TunerError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host") from None


def study_names(storage) -> list[str]:
    """The family studies in the storage (``run::family``), as optuna-dashboard lists them."""
    import optuna

    return sorted(s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
                  if SEPARATOR in s.study_name)


def serve(url: str | None, *, host: str = "127.0.0.1", port: int = 8080,
          announce: Callable[[str], None] = print) -> None:
    """Start optuna-dashboard on ``url`` (default ``sqlite:///tuner.db``); blocks until stopped."""
    run_server = _run_server()
    url = url or DEFAULT_STORAGE
    storage = open_storage(url, create=False)
    _check_port(host, port)
    names = study_names(storage)
    announce(f"optuna-dashboard for {url} at {address(host, port)} (Ctrl+C to stop)")
    if names:
        announce(f"  {len(names)} family studies: {', '.join(names[:12])}{' …' if len(names) > 12 else ''}")
    else:
        announce("  the storage holds no run yet; studies appear as `tuner run` creates them")
    try:
        run_server(storage, host=host, port=port)
    except OSError as exc:
        raise TunerError(f"optuna-dashboard could not serve on {host}:{port}: {exc.strerror or exc}") from None


__all__ = ["serve", "address", "study_names", "INSTALL_HINT"]
