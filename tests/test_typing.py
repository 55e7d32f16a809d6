"""The public API is typed (py.typed): ``mypy --strict`` on a user's script sees tuner's types,
not ``Any`` (issue #22)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

REPO = Path(__file__).resolve().parents[1]

SCRIPT = '''
import pandas as pd
import tuner


frame = pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]})
reveal_type(tuner.tune(frame, target="y", trials=2))
reveal_type(tuner.leaderboard(run="x"))
model = tuner.load("model")
reveal_type(model)
reveal_type(model.predict(frame))
reveal_type(model.predict_proba(frame))
clf = tuner.TunerClassifier(trials=2).fit(frame[["a"]], frame["y"])
reveal_type(clf)
reveal_type(clf.predict_proba(frame[["a"]]))
reveal_type(tuner.TunerRegressor(trials=2).fit(frame[["a"]], frame["y"]))
reveal_type(tuner.best_model(run="x"))
reveal_type(tuner.export("m", run="x"))
'''


def test_mypy_strict_sees_tuners_types_in_a_user_script(tmp_path):
    pytest.importorskip("mypy")
    (tmp_path / "user.py").write_text(SCRIPT)
    assert (REPO / "tuner" / "py.typed").exists()
    # an editable install hides the package from mypy behind an import hook: point it at the source
    env = dict(os.environ, MYPYPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                          "--cache-dir", str(tmp_path / "cache"), "user.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    revealed = re.findall(r'Revealed type is "(.*)"', res.stdout)
    assert len(revealed) == SCRIPT.count("reveal_type"), res.stdout
    assert not [t for t in revealed if t == "Any"], res.stdout
    assert revealed[0] == "pandas.core.frame.DataFrame" and revealed[5] == "tuner.estimators.base.TunerClassifier"
