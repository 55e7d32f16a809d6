"""How many cores a run uses, and how they are split between worker processes and model threads.

By default (``n_jobs=None``, ``--n-jobs`` not given) a run uses every core it may run on
(``os.sched_getaffinity``: a ``taskset`` or a container's CPU set is respected), or the
number in the ``TUNER_N_JOBS`` environment variable. How they are split depends on what
the run promises:

* **a trial count** (``--trials N``, or no budget at all: 20 trials per family): one worker
  process whose models get every core as threads. Each family's trials then run one after
  the other, so the same seed and trial count give the same trials and the same scores.
  Several processes would make TPE's next suggestion depend on which trial finished first.
* **a clock alone** (``--timeout`` without ``--trials``): what ends up tried depends on
  timing anyway, so the cores go where they pay most: one process per core, up to the
  number of families (TPE's parallel suggestions of one family get worse as they grow),
  and the cores left over as threads of those processes: on small and medium tables most
  trials are short, and model threads pay little there (benchmarks/RESULTS.md, "#23: how to
  spend the cores": on 2 cores, 2 × 1 keeps both cores in models and runs ~1.5 × the trials of
  1 × 2, which is no faster than one core; ``TUNER_PEER_SPLIT`` in the benchmark's tuner peer
  forces either).

An explicit ``n_jobs=J`` keeps its meaning: J processes, each with ``cores // J`` threads
(``n_jobs=1``: this process, one thread, as before ``tuner`` used every core).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tuner.errors import TunerError

ENV = "TUNER_N_JOBS"


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(n_workers: int) -> int:
    """Model / BLAS threads for each of ``n_workers`` local processes: the cores shared out.

    One explicit worker keeps one thread per model (``--n-jobs 1``: today's behaviour)."""
    if n_workers <= 1:
        return 1
    return max(1, cpu_count() // n_workers)


@dataclass(frozen=True)
class CorePlan:
    workers: int  # worker processes on this machine (1: this process)
    threads: int  # threads each model may use
    chosen: bool  # True: the default (every core); False: the user's n_jobs

    @property
    def cores(self) -> int:
        return self.workers * self.threads

    def describe(self) -> str:
        """For the run's banner: what this invocation will use."""
        procs = f"{self.workers} worker processes" if self.workers > 1 else "1 process"
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''} per model"
        how = "every core" if self.chosen else "--n-jobs"
        return f"{self.cores} core{'s' if self.cores > 1 else ''} ({how}): {procs} × {threads}"


def requested(n_jobs: int | None, what: str = "--n-jobs") -> int | None:
    """``n_jobs`` checked, or the ``TUNER_N_JOBS`` environment variable, or None (every core)."""
    if n_jobs is None:
        raw = os.environ.get(ENV, "").strip()
        if not raw:
            return None
        try:
            n_jobs = int(raw)
        except ValueError:
            raise TunerError(f"{ENV} must be a whole number of worker processes (got {raw!r}); "
                             f"unset it to use every core") from None
        what = ENV
    if n_jobs < 1:
        raise TunerError(f"{what} must be at least 1 (got {n_jobs}); leave it out to use every core")
    return n_jobs


def plan(n_jobs: int | None, *, clocked: bool, n_families: int) -> CorePlan:
    """The split of the cores for one invocation (see the module docstring).

    ``clocked``: the invocation is bounded by a clock alone, with no trial count."""
    asked = requested(n_jobs)
    if asked is not None:
        return CorePlan(asked, threads_per_worker(asked), chosen=False)
    cores = cpu_count()
    if not clocked or cores == 1:
        return CorePlan(1, cores, chosen=True)
    workers = max(1, min(cores, n_families))
    return CorePlan(workers, max(1, cores // workers), chosen=True)


def refit_threads(n_jobs: int | None) -> int:
    """Threads for one model fitted outside the search (export, report, held-out refits): the
    user's ``n_jobs``, else the cores other processes leave free (``tuner.execution.threads``)."""
    from tuner.execution.threads import fit_threads

    asked = requested(n_jobs)
    return fit_threads(cpu_count()) if asked is None else asked
