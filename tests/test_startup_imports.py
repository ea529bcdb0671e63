"""Start-up: a fresh process that loads a model and predicts imports no more than it needs.

Numba's kernels find BLAS in ``scipy.linalg.cython_blas``; fastgru loads that one extension module
without running ``scipy/linalg/__init__.py`` (0.25-0.4 s of a first ``predict``), and attaches it to
``scipy.linalg`` when something imports that later. Timings are checked in benchmarks/startup.py,
not here; these tests check what is imported and that SciPy still works afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import fastgru as fg
    from fastgru.layers import GRU, LSTM, Dense, Input
    x = np.random.default_rng(0).standard_normal((40, 6, 5))
    for cell in (GRU, LSTM):
        model = fg.Sequential([Input(shape=(6, 5)), cell(40), Dense(2)])
        y32 = model.predict(x.astype("float32"))
        y64 = model.predict(x)  # float64: dgemm, looked up separately by Numba
    print("scipy.linalg imported:", "scipy.linalg" in sys.modules)
    print("blas module:", "scipy.linalg.cython_blas" in sys.modules)
    import scipy.linalg
    import scipy.linalg.cython_blas
    from scipy.linalg import cython_blas
    assert scipy.linalg.cython_blas is cython_blas is sys.modules["scipy.linalg.cython_blas"]
    assert np.allclose(scipy.linalg.solve(np.eye(3) * 2, np.ones(3)), 0.5)
    assert np.allclose(model.predict(x), y64)
    print("ok")
""")


def test_predict_does_not_import_scipy_linalg_and_scipy_still_works():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "scipy.linalg imported: False" in lines
    assert "blas module: True" in lines
    assert lines[-1] == "ok"


def test_scipy_linalg_imported_first_is_left_alone():
    code = textwrap.dedent("""
        import sys
        import scipy.linalg
        import numpy as np
        import fastgru as fg
        from fastgru.layers import GRU, Input
        fg.Sequential([Input(shape=(3, 2)), GRU(40)]).predict(np.ones((40, 3, 2), "float32"))
        from fastgru._threads import _AttachBlasModule
        assert _AttachBlasModule not in sys.meta_path
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
