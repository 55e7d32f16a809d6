"""`tuner predict` start-up (#35): the wall time of the whole command on 200 rows, as a user runs it.

Tunes each family alone on a built-in table (a few trials, through ``tuner.tune``), exports each one
with ``tuner export``, then times ``tuner predict MODEL rows.csv --out p.csv`` end to end in a fresh
process (imports, loading and checking the folder, predicting, writing), ``--repeats`` times, and
reports the median and the fastest; also ``python -c "import tuner.cli.app"`` alone (the CLI's own
start-up) and the time the command says it spent predicting.

    python -m benchmarks.startup                                  # breast_cancer, non-Keras families
    python -m benchmarks.startup --families xgboost,keras_mlp --repeats 5
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAMILIES = ("logistic_regression", "random_forest", "hist_gradient_boosting", "xgboost", "svm")


def _timed(cmd: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, out.stdout + out.stderr


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rows", type=int, default=200)
    args = p.parse_args(argv)
    from sklearn.datasets import load_breast_cancer

    import tuner

    frame = load_breast_cancer(as_frame=True).frame
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.csv"
        frame.drop(columns=["target"]).sample(args.rows, replace=True, random_state=0).to_csv(rows, index=False)
        imports = [_timed([sys.executable, "-c", "import tuner.cli.app"])[0] for _ in range(args.repeats)]
        print(f"import tuner.cli.app: median {statistics.median(imports):.2f}s, fastest {min(imports):.2f}s")
        for family in args.families.split(","):
            storage = f"sqlite:///{Path(tmp) / (family + '.db')}"
            tuner.tune(frame, target="target", models=[family], trials=2, cv=3, storage=storage, run=family,
                       progress=False)
            folder = Path(tmp) / family
            tuner.export(folder, run=family, storage=storage)
            cmd = [sys.executable, "-m", "tuner", "predict", str(folder), str(rows), "--out", str(Path(tmp) / "p.csv")]
            walls, said = [], []
            for _ in range(args.repeats):
                wall, text = _timed(cmd)
                walls.append(wall)
                found = re.search(r"in ([0-9.]+)s", text)
                said.append(float(found.group(1)) if found else float("nan"))
            row = {"family": family, "median_s": round(statistics.median(walls), 2), "fastest_s": round(min(walls), 2),
                   "predicting_s": round(statistics.median(said), 3)}
            results.append(row)
            print(f"tuner predict ({family}, {args.rows} rows): median {row['median_s']:.2f}s, fastest "
                  f"{row['fastest_s']:.2f}s, of which predicting {row['predicting_s']:.3f}s", flush=True)
    return results


if __name__ == "__main__":
    main()
