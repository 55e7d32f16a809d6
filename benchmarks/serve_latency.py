"""Serve latency and predict throughput for the exported winner of a real dataset.

Tunes a few families on a PMLB dataset, exports the winner, then measures

* `tuner predict` throughput (rows/s) and peak memory (max RSS of the process) on CSV files
  of growing size made by repeating the data: memory stays flat because the file is read,
  predicted and written in chunks;
* `tuner serve` latency through a real server process on a loopback port, over one
  keep-alive connection: p50 / p99 of single-row and 1,000-row POST /predict requests
  (the client runs on the same cores as the server).

    python -m benchmarks.serve_latency                      # spambase, defaults below
    python -m benchmarks.serve_latency --dataset adult --out benchmarks/results/serve_latency.md

Skips cleanly (exit 0 with a message) when the PMLB folder is absent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def find_pmlb() -> Path | None:
    for c in (os.environ.get("TUNER_PMLB_DIR"), Path(__file__).resolve().parents[2] / "shared/datasets/pmlb",
              Path("/work/shared/datasets/pmlb")):
        if c and Path(c, "INDEX.tsv").exists():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tuner(*args: str) -> list[str]:
    return [sys.executable, "-m", "tuner.cli.app", *args]


def measure_predict(model_dir: Path, raw: pd.DataFrame, rows: int, folder: Path, chunk_rows: int) -> dict:
    """Run `tuner predict` in a child process on a CSV of ``rows`` rows; rows/s and peak RSS."""
    reps = int(np.ceil(rows / len(raw)))
    data = folder / f"predict_{rows}.csv"
    pd.concat([raw] * reps, ignore_index=True).head(rows).to_csv(data, index=False)
    out = folder / f"pred_{rows}.csv"
    # Peak RSS is the child's VmHWM (/proc/self/status): unlike ru_maxrss it is not inherited
    # from the (large) parent across fork + exec.
    code = (
        "import sys, time, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "def kb(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key + ':'):\n"
        "            return int(line.split()[1])\n"
        "import tuner\n"
        "from tuner.deploy.predict import predict_file\n"
        f"m = tuner.load({str(model_dir)!r})\n"
        "loaded = kb('VmRSS')\n"
        "t = time.perf_counter()\n"
        f"s = predict_file(m, {str(data)!r}, {str(out)!r}, proba=True, chunk_rows={chunk_rows})\n"
        "print(s.rows, time.perf_counter() - t, loaded, kb('VmHWM'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n, seconds, loaded_kb, peak_kb = done.stdout.split()[-4:]
    size_mb = data.stat().st_size / 1e6
    data.unlink()
    out.unlink()
    return {"rows": int(n), "file_mb": round(size_mb, 1), "seconds": round(float(seconds), 2),
            "rows_per_s": round(int(n) / float(seconds)), "rss_after_load_mb": round(int(loaded_kb) / 1024),
            "peak_rss_mb": round(int(peak_kb) / 1024)}


def _percentiles(samples: list[float]) -> dict:
    arr = np.asarray(samples) * 1000
    return {"n": len(arr), "p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p99_ms": round(float(np.percentile(arr, 99)), 2), "mean_ms": round(float(arr.mean()), 2)}


def start_server(model_dir: Path, max_body_bytes: int = 50_000_000, timeout: float = 120,
                 log=subprocess.DEVNULL) -> tuple[subprocess.Popen, int]:
    """`tuner serve MODEL_DIR` on a free loopback port, once /health answers: (process, port)."""
    port = _free_port()
    proc = subprocess.Popen(_tuner("serve", str(model_dir), "--port", str(port), "--max-body-bytes", str(max_body_bytes)),
                            stdout=log, stderr=log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with code {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/health")
            conn.getresponse().read()
            conn.close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                stop_server(proc)
                raise SystemExit(f"server did not start within {timeout:.0f} s") from None
            time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure_serve(model_dir: Path, raw: pd.DataFrame, single: int, batch: int, batch_rows: int) -> dict:
    proc, port = start_server(model_dir)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in raw.to_dict(orient="records")]
        rng = np.random.default_rng(0)

        def post(rows: list[dict]) -> float:
            body = json.dumps({"records": rows})
            start = time.perf_counter()
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            payload = resp.read()
            elapsed = time.perf_counter() - start
            if resp.status != 200:
                raise SystemExit(f"POST /predict answered {resp.status}: {payload[:300]!r}")
            return elapsed

        for _ in range(20):  # warm-up
            post([records[int(rng.integers(len(records)))]])
        one = [post([records[int(rng.integers(len(records)))]]) for _ in range(single)]
        many = []
        for _ in range(batch):
            start = int(rng.integers(0, max(1, len(records) - batch_rows)))
            many.append(post(records[start:start + batch_rows]))
        conn.close()
        return {"single_row": _percentiles(one), f"{batch_rows}_rows": _percentiles(many)}
    finally:
        stop_server(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="spambase")
    parser.add_argument("--models", default="logistic_regression,random_forest,xgboost")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--single", type=int, default=500, help="single-row requests")
    parser.add_argument("--batch", type=int, default=100, help="1,000-row requests")
    parser.add_argument("--predict-rows", default="100000,1000000", help="CSV sizes for `tuner predict`")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--out", type=Path, help="also write the results as Markdown here")
    args = parser.parse_args()

    pmlb = find_pmlb()
    if pmlb is None:
        print("skipped: PMLB dataset folder not found (set TUNER_PMLB_DIR)")
        return
    source = pmlb / f"{args.dataset}.tsv.gz"
    if not source.exists():
        print(f"skipped: {source} not found")
        return
    import tuner
    from tuner.deploy.export import export_model

    with tempfile.TemporaryDirectory(prefix="tuner-serve-bench-") as tmp:
        folder = Path(tmp)
        storage = f"sqlite:///{folder / 'bench.db'}"
        start = time.monotonic()
        tuner.tune(str(source), target="target", models=args.models, trials=args.trials, cv=3,
                           storage=storage, run=args.dataset)
        tune_s = time.monotonic() - start
        result = export_model(folder / "model", run=args.dataset, storage=storage)
        card = result.card
        raw = pd.read_csv(source, sep="\t").drop(columns=["target"])
        predict = [measure_predict(result.out, raw, int(n), folder, args.chunk_rows)
                   for n in args.predict_rows.split(",")]
        serve = measure_serve(result.out, raw, args.single, args.batch, 1000)

    metric = card["metric"]
    m = card["leaderboard_row"]["metrics"][metric]
    lines = [
        f"# Serve latency and predict throughput: {args.dataset}",
        "",
        f"Winner: **{card['family']}** ({metric} {m['mean']:.4f} ± {m['std']:.4f}, {args.trials} trials per family of "
        f"{args.models}, tuned in {tune_s:.0f}s); {len(raw)} rows × {raw.shape[1]} features; "
        f"machine: {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f} at the end: other jobs share "
        f"them); Python {sys.version.split()[0]}.",
        "",
        "## `tuner serve` (one keep-alive connection, loopback)",
        "",
        "| request | n | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|",
    ]
    for name, s in serve.items():
        lines.append(f"| {name.replace('_', ' ')} | {s['n']} | {s['p50_ms']} | {s['p99_ms']} | {s['mean_ms']} |")
    lines += ["", f"## `tuner predict --proba` (chunks of {args.chunk_rows} rows)", "",
              "| rows | CSV MB | seconds | rows/s | RSS after loading the model MB | peak RSS MB |",
              "|---|---|---|---|---|---|"]
    for p in predict:
        lines.append(f"| {p['rows']} | {p['file_mb']} | {p['seconds']} | {p['rows_per_s']} | "
                     f"{p['rss_after_load_mb']} | {p['peak_rss_mb']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
