"""The peers of ``benchmarks.compare``: each a program run in its own process (see ``_common``)."""

# name -> module run with ``python -m``
PEERS: dict[str, str] = {
    "tuner": "benchmarks.peers.tuner_peer",
    "flaml": "benchmarks.peers.flaml_peer",
    "optuna_baseline": "benchmarks.peers.optuna_baseline",
    # runs from a venv of its own: --python autogluon=PATH or $TUNER_BENCH_AUTOGLUON_PYTHON
    "autogluon": "benchmarks.peers.autogluon_peer",
}
