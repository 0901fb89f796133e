"""Shared fixtures: run a notebook once per session with papermill and read its figures back."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import NOTEBOOKS, ROOT, in_ci, notebook_path, skip_or_fail  # noqa: F401 (re-exported)

# Every kernel and subprocess started by the tests is offline: ftlab blocks non-loopback sockets.
os.environ["FTLAB_OFFLINE"] = "1"
for _k, _v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_k, _v)
os.environ.pop("OPENAI_API_KEY", None)  # the default path never talks to OpenAI
# Under pytest-xdist each worker is one process of its own: one torch thread per worker (FTLAB_THREADS, read by
# ftlab.core.tune_cpu_threads in every kernel), so two workers on two cores never oversubscribe them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("FTLAB_THREADS", "1")

# A notebook whose kernel stops answering (no busy/output/reply for a request in 60 s) or dies is re-run once in a
# fresh kernel (ftlab.kernelwatch), well before pytest's 900 s timeout. Each re-run is appended to one file
# (FTLAB_RETRY_LOG, the controller's, handed to the xdist workers) and listed at the end of the session.
os.environ.setdefault("FTLAB_STALL_SECONDS", "60")

_executed: dict[tuple, object] = {}


def pytest_terminal_summary(terminalreporter):
    """List the notebooks that were re-run after a kernel stall or death: a retry is never silent."""
    path = Path(os.environ["FTLAB_RETRY_LOG"])
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if lines:
        terminalreporter.section(f"{len(lines)} notebook run(s) re-run once in a fresh kernel")
        for line in lines:
            entry = json.loads(line)
            terminalreporter.write_line(f"{entry['notebook']}: re-run {entry['rerun_status']}; {entry['reason']}")

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """No silent skips in CI: under ``CI=true`` any skip (skip marks, ``pytest.skip``, ``importorskip``) is a failure."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI=true: this test skipped, and CI must run it ({reason.removeprefix('Skipped: ')})"


# Every toy base model the suite uses (notebooks: seed 0; test_toymodel and 08: 1 and 2), built up front.
# FTLAB_TEST_TOY_SEEDS=0 pre-builds only seed 0 (a test needing another seed then builds it where it is used).
TOY_SEEDS = tuple(int(s) for s in os.environ.get("FTLAB_TEST_TOY_SEEDS", "0,1,2").split(",") if s.strip())


@pytest.fixture(scope="session")
def toy_models() -> None:
    """Build the toy seeds once, side by side: one single-threaded ``ftlab toy-model`` process per seed, so both
    cores work. Cached seeds return at once; with pytest-xdist the second worker waits on the first's folder
    lock and reuses its build. Whatever a process failed to build is built (and its error shown) where used."""
    procs = [subprocess.Popen([sys.executable, "-m", "ftlab", "toy-model", "--seed", str(s), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for s in TOY_SEEDS]
    for proc in procs:
        out, _ = proc.communicate(timeout=850)
        if proc.returncode != 0:
            print(out[-2000:])


# run_notebook("06", ...), or notebook_path("03") for a test that executes the notebook itself in notebooks/
_NOTEBOOK_CALL = re.compile(r"""(?:run_notebook|notebook_path)\(\s*["'](\d\d)["']""")


def notebook_group(item) -> str | None:
    """The notebook whose session-cached run a test reads (``run_notebook("06")``, or a notebook parameter), or
    that it executes in ``notebooks/`` itself (``notebook_path("03")``: its files would race the cached run's)."""
    try:
        found = _NOTEBOOK_CALL.findall(inspect.getsource(item.function))
    except (AttributeError, OSError, TypeError):
        found = []
    params = getattr(getattr(item, "callspec", None), "params", {})
    if not found and "run_notebook" in getattr(item, "fixturenames", ()) and isinstance(params.get("path"), Path):
        found = [params["path"].name[:2]]
    return f"notebook-{found[0]}" if found else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (``--dist loadgroup``), every test reading notebook NN's cached run goes to one worker,
    so each notebook is executed once per suite, not once per worker."""
    for item in items:
        group = None if item.get_closest_marker("xdist_group") else notebook_group(item)
        if group and item.get_closest_marker("own_run"):
            # the test runs its notebook with parameters of its own (no cached run to share): a group of its own
            # lets the two workers split such tests (the real-model runs, the suite's longest)
            group = f"{group}-own-{item.originalname}"
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    # Longest first: the own-run tests (the real-model runs, minutes each) start before the toy tests, so that the
    # two workers end together instead of one of them starting a 10-minute run at the end (xdist hands out groups
    # in collection order). A stable sort: within each part the files' order stays.
    items.sort(key=lambda item: item.get_closest_marker("own_run") is None)


class _GroupsInNodeIds:
    """pytest-xdist 3.8 puts a test's group into its node id with ``item._nodeid = ...@group``; pytest 9 keeps
    the node id in ``item._id``, so that does nothing and ``--dist loadgroup`` would spread a group over the
    workers. This plugin does it the same way, after xdist's own hook, where xdist's did not take."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        if not getattr(config.option, "loadgroup", False):
            return
        from _pytest.nodeid import NodeId

        for item in items:
            names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                            for m in item.iter_markers("xdist_group")})
            if names and "@" not in item.nodeid:
                item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


def pytest_configure(config):
    config.pluginmanager.register(_GroupsInNodeIds(), "ftlab-xdist-groups-in-node-ids")
    given = getattr(config, "workerinput", {}).get("ftlab_retry_log")  # an xdist worker: the controller's file
    if given:
        os.environ["FTLAB_RETRY_LOG"] = given
    else:
        os.environ.setdefault("FTLAB_RETRY_LOG", os.path.join(tempfile.mkdtemp(prefix="ftlab-retries-"), "retries.jsonl"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist: every worker appends its re-runs to the controller's FTLAB_RETRY_LOG."""
    node.workerinput["ftlab_retry_log"] = os.environ["FTLAB_RETRY_LOG"]


def _is_default(path: Path, name: str, value) -> bool:
    import ast

    from ftlab.runner import declared_parameters

    try:
        default = ast.literal_eval(declared_parameters(path)[name]["default"])
    except (KeyError, ValueError, SyntaxError, TypeError):
        return False
    return type(default) is type(value) and default == value


@pytest.fixture(scope="session")
def run_notebook(tmp_path_factory, toy_models):
    """``run_notebook("04", lr=1e-3)`` executes a notebook once per session and parameter set.

    Returns the ``NotebookResult`` (status, figures, path of the executed notebook). A failed
    notebook fails the test with the cell and the error. A notebook with exercises runs, with its
    default parameters, as its solutions version (the same code plus a check cell per exercise:
    ``tests/test_exercises.py``), so one execution serves the default-run tests and the exercise tests.
    """
    from ftlab.exercises import find_exercises, write_exercises
    from ftlab.runner import execute_notebook

    def _run(name: str, *, expect_ok: bool = True, **params):
        path = notebook_path(name)
        params = {k: v for k, v in params.items() if not _is_default(path, k, v)}  # seed=0 is the default run
        key = (name, tuple(sorted(params.items())))
        if key not in _executed:
            folder = tmp_path_factory.mktemp("nb")
            if not params and find_exercises(path):
                path = write_exercises([path], folder / "solutions", solutions=True)[0][0]
            _executed[key] = execute_notebook(path, folder / path.name, params, progress=False, cwd=NOTEBOOKS)
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
