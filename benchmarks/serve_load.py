"""Load test of `tuner serve`: a bounded number of POST /predict requests from concurrent clients.

Trains and exports a small model (or takes ``--model DIR``), starts `tuner serve` in its own
process on a loopback port, and drives it from a second process: ``--clients`` threads, each
with its own keep-alive connection, share ``--requests`` requests of ``--rows`` random rows
each (after a short warm-up that is not counted). Prints requests/s, latency percentiles and
the error count (any answer but 200, or a failed connection); exits 1 if there was an error.

    python -m benchmarks.serve_load                                   # 16 clients, 4,000 single-row requests
    python -m benchmarks.serve_load --clients 16 --requests 4000 --rows 1
    python -m benchmarks.serve_load --model model/ --rows 100 --out benchmarks/results/serve_load.md

The load generator is a separate Python process, but on a machine with few cores it competes
with the server for them (see the CPU affinity printed with the results): pin them apart
(``taskset``) to measure the server alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from benchmarks.serve_latency import start_server, stop_server


def drive(port: int, bodies: list[bytes], clients: int, requests: int, warmup: int) -> dict:
    """The load generator (runs in its own process): ``requests`` POSTs from ``clients`` threads."""
    lock = threading.Lock()
    state = {"next": 0}
    latencies: list[float] = []
    errors: list[str] = []

    def take(limit: int) -> int | None:
        with lock:
            if state["next"] >= limit:
                return None
            state["next"] += 1
            return state["next"] - 1

    def client(limit: int, record: bool) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, failed = [], []
        try:
            while (i := take(limit)) is not None:
                body = bodies[i % len(bodies)]
                start = time.perf_counter()
                try:
                    conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    payload = resp.read()
                    status = resp.status
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    failed.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - start
                if status != 200:
                    failed.append(f"HTTP {status}: {payload[:200]!r}")
                mine.append(elapsed)
        finally:
            conn.close()
        if record:
            with lock:
                latencies.extend(mine)
                errors.extend(failed)

    def run(limit: int, record: bool) -> float:
        state["next"] = 0
        threads = [threading.Thread(target=client, args=(limit, record)) for _ in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start

    run(warmup, record=False)
    wall = run(requests, record=True)
    ms = np.asarray(latencies) * 1000
    return {
        "requests": requests, "completed": len(latencies), "errors": len(errors), "error_examples": errors[:5],
        "wall_s": wall, "requests_per_s": requests / wall,
        "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "mean_ms": float(ms.mean()),
        "client_cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "client_cpu_s": time.process_time(),
    }


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _model(args, folder: Path) -> Path:
    if args.model is not None:
        return args.model
    import tuner
    from tuner.deploy.export import export_model

    storage = f"sqlite:///{folder / 'bench.db'}"
    tuner.tune(args.dataset, target=args.target, models=args.models, trials=args.trials, cv=3,
               storage=storage, run="serve_load")
    return export_model(folder / "model", run="serve_load", storage=storage).out


def _bodies(model_dir: Path, args, n: int = 500) -> list[bytes]:
    """``n`` request bodies of ``--rows`` random rows each, from ``--data`` or the training data."""
    import pandas as pd

    import tuner
    from tuner.data.dataset import read_table

    model = tuner.load(model_dir)
    raw = read_table(args.data or model.card.get("data", {}).get("source") or args.dataset)
    raw = raw[[c for c in model.schema.columns]]
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in raw.to_dict(orient="records")]
    rng = np.random.default_rng(0)
    return [json.dumps({"records": [records[int(j)] for j in rng.integers(len(records), size=args.rows)]},
                       default=float).encode() for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (threads, one connection each)")
    parser.add_argument("--requests", type=int, default=4000, help="requests in the measured run")
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--warmup", type=int, default=100, help="requests before the measured run (not counted)")
    parser.add_argument("--model", type=Path, help="an exported model folder (default: train and export one)")
    parser.add_argument("--data", help="rows to send (default: the model's training data)")
    parser.add_argument("--dataset", default="builtin:breast_cancer", help="data to train on without --model")
    parser.add_argument("--target", default="target")
    parser.add_argument("--models", default="logistic_regression")
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the results as Markdown here")
    args = parser.parse_args()
    if args.clients < 1 or args.requests < 1 or args.rows < 1:
        parser.error("--clients, --requests and --rows must be at least 1")

    with tempfile.TemporaryDirectory(prefix="tuner-serve-load-") as tmp:
        model_dir = _model(args, Path(tmp))
        bodies = _bodies(model_dir, args)
        card = json.loads((Path(model_dir) / "model_card.json").read_text())
        proc, port = start_server(model_dir, max_body_bytes=max(10_000_000, 2 * max(map(len, bodies))))
        try:
            server_cpus = sorted(os.sched_getaffinity(proc.pid)) if hasattr(os, "sched_getaffinity") else None
            cpu_before = _cpu_seconds(proc.pid)
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                result = pool.submit(drive, port, bodies, args.clients, args.requests, args.warmup).result()
            cpu_after = _cpu_seconds(proc.pid)
            alive = proc.poll() is None
        finally:
            stop_server(proc)

    r = result
    server_ms = (None if cpu_before is None or cpu_after is None
                 else (cpu_after - cpu_before) * 1000 / (args.requests + args.warmup))
    lines = [
        f"# `tuner serve` under load: {card['family']} ({card['task']}, {len(card['schema']['columns'])} columns)",
        "",
        f"{args.clients} concurrent clients (one keep-alive connection each, in a second process), "
        f"{args.requests} POST /predict requests of {args.rows} row(s) after {args.warmup} warm-up requests; "
        f"loopback.",
        "",
        "| clients | requests | rows/request | requests/s | p50 ms | p95 ms | p99 ms | max ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {args.clients} | {r['requests']} | {args.rows} | {r['requests_per_s']:.0f} | {r['p50_ms']:.1f} | "
        f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['errors']} |",
        "",
        f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; server on CPU(s) "
        f"{server_cpus}, load generator on CPU(s) {r['client_cpus']}"
        f"{' (the same: they compete for it)' if server_cpus == r['client_cpus'] and len(server_cpus or []) == 1 else ''}; "
        f"load generator CPU time {r['client_cpu_s']:.1f} s of {r['wall_s']:.1f} s wall; Python {sys.version.split()[0]}.",
    ]
    if server_ms is not None:
        lines += ["", f"Server CPU time per request (warm-up included): {server_ms:.1f} ms, i.e. at most "
                      f"{1000 / server_ms:.0f} requests/s per core it has to itself."]
    if r["errors"]:
        lines += ["", "Errors (first 5): " + "; ".join(r["error_examples"])]
    if not alive:
        lines += ["", "The server was no longer running at the end."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    if r["errors"] or not alive:
        sys.exit(1)


if __name__ == "__main__":
    main()
