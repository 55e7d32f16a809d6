"""Peer ``tuner_early_stop``: ``tuner`` driven as ``benchmarks.peers.tuner_peer`` drives it, with the one
public option ``early_stop=True`` (``tuner run --timeout T --early-stop``): the trials end once the
leaderboard is flat (``tuner.execution.plateau``). Benchmarked against the default peer to measure
what the early stop saves in time and costs in score (benchmarks/RESULTS.md, "Time to quality").

    python -m benchmarks.compare --suite both --budget 60 \\
        --peers tuner_early_stop=benchmarks.peers.tuner_early_stop --out results/
"""

from __future__ import annotations

from benchmarks.peers import _common, tuner_peer


def run(args) -> None:
    tuner_peer.run(args, early_stop=True)


if __name__ == "__main__":
    _common.main(run, __doc__)
