"""How many threads a model fit may use: the cores that are free, not every core.

An OpenMP fit (HistGradientBoosting, XGBoost) waits at a barrier for all of its threads after
every parallel step. When another process holds one of the cores, the thread on that core runs
only when the scheduler gives it a slice, and every barrier waits for it: on 2 cores with a busy
loop beside it, a 2-thread XGBoost fit took 52 x as long as on a quiet machine and a
2-thread HistGradientBoosting fit 6 x, while a 1-thread fit kept its speed (benchmarks/RESULTS.md,
"#31: threads per fit on a busy machine"; ``benchmarks/thread_policy.py``). libgomp's passive wait
policy does not cure it and costs the quiet case far more.

So a fit gets the cores that were free over the last moment (``free_cores``: ``/proc/stat``
minus what this process itself used), at least one and at most the cores it was given. The
reading is refreshed at most every ``REFRESH_S`` from the previous one (no sleep then); the
first reading of a process waits ``FIRST_WINDOW_S``. Where ``/proc/stat`` does not exist
(macOS, Windows) every core given is used, as before.
"""

from __future__ import annotations

import os
import threading
import time

REFRESH_S = 2.0
FIRST_WINDOW_S = 0.15
# A core counts as free when at least this share of it was idle.
FREE_SHARE = 0.75
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

_lock = threading.Lock()
_last: dict = {}


def _reading() -> tuple[float, float, float, float] | None:
    """(wall time, busy ticks of every core, idle ticks, this process' CPU seconds), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [float(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return time.monotonic(), sum(values) - idle, idle, time.process_time()


def free_cores(cores: int) -> float:
    """How many of ``cores`` other processes left free since the last reading (``cores`` if unknown)."""
    with _lock:
        now = _reading()
        if now is None:
            return float(cores)
        before = _last.get("reading")
        if before is None or now[0] - before[0] > 10 * REFRESH_S:
            time.sleep(FIRST_WINDOW_S)
            before, now = now, _reading()
        elif now[0] - before[0] < REFRESH_S and "free" in _last:
            return _last["free"]
        wall = now[0] - before[0]
        if wall <= 0:
            return float(cores)
        others = max(0.0, (now[1] - before[1]) / TICKS - (now[3] - before[3]))  # busy core-seconds not ours
        machine = os.cpu_count() or cores
        free = max(0.0, machine - others / wall)
        _last.update(reading=now, free=min(float(cores), free))
        return _last["free"]


def fit_threads(cores: int) -> int:
    """Threads for one fit given ``cores``: the free ones, at least 1 (``cores`` when 1)."""
    if cores <= 1:
        return 1
    return max(1, min(cores, int(free_cores(cores) + (1.0 - FREE_SHARE))))


__all__ = ["fit_threads", "free_cores"]
