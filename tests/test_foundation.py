"""Unit tests for the foundation: figures, parameter checks, the offline guard and the runner."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import nbformat
import pytest

from ftlab import figures as F
from ftlab.errors import ParameterError
from ftlab.params import check_param, check_params, looks_like_secret, reject_secrets
from tests.helpers import ROOT


def _nb(cells: list[str], params: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_record_and_read_back(tmp_path):
    nb = _nb(["import ftlab, numpy as np\nftlab.record('acc', np.float32(0.5))\nftlab.record('curve', [1, 2.5])"], "x: int = 1  # x")
    from ftlab.runner import execute_notebook

    src = tmp_path / "01_demo.ipynb"
    nbformat.write(nb, src)
    res = execute_notebook(src, tmp_path / "out.ipynb", {}, progress=False)
    assert res.status == "ok", res.error
    assert res.figures == {"acc": 0.5, "curve": [1, 2.5]}
    # each figure is shown once: its display, and no execute_result repeating it (the cell's last line)
    outs = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[-1].outputs
    assert [o.output_type for o in outs] == ["display_data", "display_data"], outs


def test_jsonable_handles_nan_and_paths(tmp_path):
    assert F._jsonable(float("nan")) == "nan"
    assert F._jsonable(tmp_path) == str(tmp_path)
    assert F._jsonable((1, {"a": 2})) == [1, {"a": 2}]


def test_check_param_messages_name_the_parameter():
    with pytest.raises(ParameterError, match=r"'epochs' = -1 is out of range.*from 1 to 50"):
        check_param("epochs", -1, int, min=1, max=50)
    with pytest.raises(ParameterError, match=r"'epochs' = 'three' has type str: expected int"):
        check_param("epochs", "three", int)
    with pytest.raises(ParameterError, match=r"valid values: a, b"):
        check_param("model", "c", str, choices=["a", "b"])
    with pytest.raises(ParameterError, match="does not exist"):
        check_param("data_file", "/nonexistent/x.jsonl", str, exists=True)
    with pytest.raises(ParameterError, match="expected float"):
        check_param("lr", True, float)
    assert check_param("lr", 1, float) == 1.0
    assert check_params(n=(3, int, {"min": 1}))["n"] == 3


def test_secrets_rejected():
    assert looks_like_secret("openai_api_key", "x")
    assert looks_like_secret("anything", "sk-proj-abcdefghijklmnop")
    assert not looks_like_secret("max_tokens", 100)
    assert not looks_like_secret("model_id", "gpt-4.1-mini")
    with pytest.raises(ParameterError, match="environment"):
        reject_secrets({"api_key": "sk-123456789abcdef"})


def test_offline_guard_blocks_non_loopback_in_a_subprocess():
    code = (
        "import os; os.environ['FTLAB_OFFLINE']='1'\n"
        "import ftlab, socket\n"
        "from ftlab.offline import NetworkBlockedError\n"
        "s = socket.socket()\n"
        "try:\n    s.connect(('93.184.216.34', 80)); print('CONNECTED')\n"
        "except NetworkBlockedError as e: print('BLOCKED', e)\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n"
        "c = socket.socket(); c.connect(srv.getsockname()); print('LOOPBACK OK')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "BLOCKED" in proc.stdout and "LOOPBACK OK" in proc.stdout, proc.stdout + proc.stderr
    assert "CONNECTED" not in proc.stdout


def test_pytest_itself_blocks_sockets():
    with pytest.raises(Exception):  # noqa: B017 - pytest-socket raises its own error type
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_runner_reports_the_failing_cell_and_keeps_going(tmp_path, cli):
    books = tmp_path / "books"
    books.mkdir()
    nbformat.write(_nb(["import ftlab\nftlab.record('n', n * 2)"], "n: int = 2  # a number"), books / "01_good.ipynb")
    nbformat.write(_nb(["x = 1", "raise ValueError('boom')"], "m: int = 0  # another"), books / "02_bad.ipynb")
    nbformat.write(_nb(["import ftlab\nftlab.record('k', 7)"], "k: int = 0  # unused"), books / "03_after.ipynb")
    out = tmp_path / "run"
    code, _, err = cli("run", "--notebooks", str(books), "--out", str(out), "-p", "n", "5", "--quiet")
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())["notebooks"]
    assert summary["01_good.ipynb"]["status"] == "ok" and summary["01_good.ipynb"]["figures"] == {"n": 10}
    bad = summary["02_bad.ipynb"]
    assert bad["status"] == "failed" and bad["error"]["code_cell"] == 3 and "boom" in bad["error"]["evalue"]
    assert summary["03_after.ipynb"]["status"] == "ok"
    assert (out / "02_bad.ipynb").exists() and (out / "summary.md").exists()
    # --only and unknown parameters
    code, _, err = cli("run", "--notebooks", str(books), "--out", str(tmp_path / "r2"), "--only", "03", "-p", "zzz", "1", "--quiet")
    assert code == 2 and "zzz" in err
    code, _, err = cli("run", "--notebooks", str(books), "--out", str(tmp_path / "r3"), "--only", "77", "--quiet")
    assert code == 2 and "matches no notebook" in err
    code, _, err = cli("run", "--notebooks", str(books), "--out", str(tmp_path / "r4"), "-p", "openai_api_key", "sk-abcdefghijkl", "--quiet")
    assert code == 2 and "credential" in err


def test_cli_entry_point_help():
    proc = subprocess.run([sys.executable, "-m", "ftlab", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "run" in proc.stdout


def test_kernels_talk_over_fresh_unix_sockets_so_parallel_runs_cannot_cross(tmp_path):
    """Two notebooks executed at the same time from the same folder (two pytest-xdist workers, two `ftlab run`s)
    each get their own kernel sockets: an absolute path of its own, no TCP port to race for."""
    import os
    import threading

    from ftlab.runner import execute_notebook, kernel_manager_class

    if os.name == "posix":
        km = kernel_manager_class()()
        assert km.transport == "ipc" and os.path.isabs(km.ip) and km.ip != kernel_manager_class()().ip
    src = tmp_path / "01_demo.ipynb"
    nbformat.write(_nb(["import ftlab, os\nftlab.record('pid', os.getpid())\nftlab.record('n', n)"], "n: int = 0  # n"), src)
    results = {}

    def run(i):
        results[i] = execute_notebook(src, tmp_path / f"out{i}.ipynb", {"n": i}, progress=False, cwd=tmp_path)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert all(results[i].status == "ok" and results[i].figures["n"] == i for i in range(3)), results
    assert len({results[i].figures["pid"] for i in range(3)}) == 3
