"""Shared fixtures: run a notebook once per session with papermill and read its figures back."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

# Every kernel and subprocess started by the tests is offline: ftlab blocks non-loopback sockets.
os.environ["FTLAB_OFFLINE"] = "1"
for _k, _v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_k, _v)
os.environ.pop("OPENAI_API_KEY", None)  # the default path never talks to OpenAI

_executed: dict[tuple, object] = {}

def in_ci() -> bool:
    """``CI`` is set (and not to 0/false/no): every test must run its real component."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(missing: str) -> None:
    """Skip a test whose real component is missing here; under ``CI=true`` fail instead, saying what is missing."""
    if in_ci():
        pytest.fail(f"CI must run this test, but {missing}", pytrace=False)
    pytest.skip(missing)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """No silent skips in CI: under ``CI=true`` any skip (skip marks, ``pytest.skip``, ``importorskip``) is a failure."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI=true: this test skipped, and CI must run it ({reason.removeprefix('Skipped: ')})"


def notebook_path(name: str) -> Path:
    matches = sorted(NOTEBOOKS.glob(f"{name}*.ipynb"))
    assert matches, f"no notebook matches {name!r} in {NOTEBOOKS}"
    return matches[0]


@pytest.fixture(scope="session")
def run_notebook(tmp_path_factory):
    """``run_notebook("04", lr=1e-3)`` executes a notebook once per session and parameter set.

    Returns the ``NotebookResult`` (status, figures, path of the executed notebook). A failed
    notebook fails the test with the cell and the error.
    """
    from ftlab.runner import execute_notebook

    def _run(name: str, *, expect_ok: bool = True, **params):
        key = (name, tuple(sorted(params.items())))
        if key not in _executed:
            path = notebook_path(name)
            out = tmp_path_factory.mktemp("nb") / path.name
            _executed[key] = execute_notebook(path, out, params, progress=False, cwd=NOTEBOOKS)
        result = _executed[key]
        if expect_ok:
            assert result.status == "ok", f"{name} failed: {result.error} (executed notebook: {result.output})"
        return result

    return _run


@pytest.fixture
def cli(monkeypatch):
    """Call ``ftlab`` in-process: ``code, out, err = cli("cost", "--json")``."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from ftlab.cli import main

    def _cli(*argv: str):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else 2
        return code, out.getvalue(), err.getvalue()

    return _cli


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
