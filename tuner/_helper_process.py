"""Entry point of a local helper worker process: ``python -m tuner._helper_process``.

Started by ``tuner.execution.local_workers.run_local`` (``--n-jobs J``): it reads its pickled
``_HelperSpec`` from standard input, works on the run, and reports each trial as a JSON
line on the standard output it was given; anything else printed goes to standard error.
As an entry point it may import every layer: it builds the search driver that
``tuner.execution`` (below ``tuner.search``) runs.
"""

from __future__ import annotations

import os
import pickle
import sys


def make_driver(storage, config, spec):
    """The search driver of one helper: one worker process, its share of the threads."""
    from tuner.execution.worker import worker_id
    from tuner.search.driver import Driver

    return Driver(storage, config, spec.dataset, n_jobs=1, threads=spec.threads, salt=f"{worker_id()}:{spec.index}")


def main() -> int:
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints (from C libraries too) must not mix with the events
    sys.stdout = sys.stderr
    spec = pickle.load(sys.stdin.buffer)
    from tuner.execution.local_workers import helper_main

    code = helper_main(spec, events, make_driver)
    try:
        events.close()
    except OSError:  # the parent is gone
        pass
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: heartbeat threads are daemons, events are flushed


if __name__ == "__main__":
    main()
