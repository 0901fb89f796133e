"""A kernel that stops answering fails fast and the notebook is re-run once, visibly (``ftlab.kernelwatch``).

The stall is real: a cell tells the kernel's shell stream to stop reading its socket (as the kernel seen in CI,
idle while the client waited), so the next cell's ``execute_request`` is sent and never read: no ``busy``, no
reply. Each test builds a tiny notebook; a counter file counts how many times it ran.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from ftlab.runner import execute_notebook

STALL = 4.0  # seconds without busy/output/reply that count as a stall here (FTLAB_STALL_SECONDS, default 60)

# Counts the runs in the file COUNTER; on the first STALL_RUNS runs, 0.5 s after this cell (its own reply is out by
# then) the kernel either stops reading its shell socket ("request": the next request is never read, as no busy
# shows) or drops its shell replies ("reply": the next cell runs and goes idle, but its reply never leaves, the
# failure seen in CI: busy, output and idle on IOPub, no execute_reply).
_STALL_CELL = '''\
from pathlib import Path
runs = Path({counter!r})
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
if len(runs.read_text()) <= {stall_runs}:
    k = get_ipython().kernel
    loop = k.shell_channel_thread.io_loop
    if {mode!r} == "request":
        loop.add_callback(lambda: loop.call_later(0.5, k.shell_stream.stop_on_recv))
    else:
        replies = k.shell_channel_thread.manager._main_to_shell_channel.to_stream
        loop.add_callback(lambda: loop.call_later(0.5, lambda: replies.on_recv(lambda msg: None)))
'''


def _notebook(tmp_path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "book.ipynb"
    nbformat.write(nb, path)
    return path


def _runs(tmp_path: Path) -> int:
    counter = tmp_path / "runs.txt"
    return len(counter.read_text()) if counter.exists() else 0


def _run(tmp_path: Path, book: Path, lines: list[str], **kw) -> tuple:
    started = time.monotonic()
    (tmp_path / "out").mkdir(exist_ok=True)
    result = execute_notebook(book, tmp_path / "out" / "book.ipynb", progress=False, cwd=tmp_path,
                              log=lines.append, **kw)
    return result, time.monotonic() - started


def _printed(executed: str) -> list[str]:
    """What the executed notebook's cells printed."""
    cells = json.loads(Path(executed).read_text())["cells"]
    return ["".join(o["text"]) for c in cells for o in c.get("outputs", []) if o.get("output_type") == "stream"]


def _stall_book(tmp_path: Path, stall_runs: int, mode: str = "request") -> Path:
    return _notebook(tmp_path, _STALL_CELL.format(counter=str(tmp_path / "runs.txt"), stall_runs=stall_runs, mode=mode),
                     "import time; time.sleep(1.5)  # the kernel stops reading during this cell", "print('after the stall')")


@pytest.fixture(autouse=True)
def _own_retry_log(tmp_path, monkeypatch):
    """These re-runs are on purpose: they go to the test's own log, not to the suite's list of re-runs."""
    monkeypatch.setenv("FTLAB_RETRY_LOG", str(tmp_path / "retries.jsonl"))


def test_a_lost_request_is_detected_and_the_notebook_re_run_once_in_a_fresh_kernel(tmp_path):
    lines: list[str] = []
    result, seconds = _run(tmp_path, _stall_book(tmp_path, stall_runs=1), lines, stall_seconds=STALL)
    assert result.status == "ok", result.error
    assert _runs(tmp_path) == 2, "the notebook ran once, stalled, and ran once more"
    assert result.retried and "stopped answering" in result.retry_reason and "after the stall" in result.retry_reason
    assert "did not wake it" in result.retry_reason  # the kernel stopped reading: one more request cannot wake it
    logged = [json.loads(line) for line in (tmp_path / "retries.jsonl").read_text().splitlines()]
    assert [(e["rerun_status"], e["reason"]) for e in logged] == [("ok", result.retry_reason)]
    assert any("re-running it once in a fresh kernel" in line for line in lines), lines  # never silently
    first = Path(result.first_attempt)
    assert first.name == "book.stalled.ipynb" and first.exists(), "the stalled attempt is kept to look at"
    assert _printed(result.output) == ["after the stall\n"]  # the re-run reached the last cell
    js = result.to_json()
    assert js["retried"] is True and js["retry_reason"] == result.retry_reason and js["status"] == "ok"
    assert seconds < 60, f"{seconds:.0f} s: the stall was not caught quickly"


def test_a_lost_reply_after_idle_is_detected_and_re_run(tmp_path):
    """The kernel ran the cell and went idle, but the execute_reply never reached the client (CI's hang)."""
    lines: list[str] = []
    result, seconds = _run(tmp_path, _stall_book(tmp_path, stall_runs=1, mode="reply"), lines, stall_seconds=STALL)
    assert result.status == "ok" and result.retried and _runs(tmp_path) == 2, (result.error, lines)
    assert "went idle, but its execute_reply did not come" in result.retry_reason, result.retry_reason
    assert "time.sleep(1.5)" in result.retry_reason and "held no message" in result.retry_reason
    assert _printed(result.output) == ["after the stall\n"] and seconds < 60


def test_a_kernel_that_stalls_again_fails_after_one_re_run(tmp_path):
    lines: list[str] = []
    result, seconds = _run(tmp_path, _stall_book(tmp_path, stall_runs=99), lines, stall_seconds=STALL)
    assert result.status == "failed" and result.error["ename"] == "KernelStalled", result.error
    assert _runs(tmp_path) == 2, "one re-run, not more"
    assert result.retried and any("the re-run failed too" in line for line in lines), lines
    assert seconds < 60


def test_without_the_watch_the_lost_request_is_a_hang(tmp_path, monkeypatch):
    """The check can fail: with the watch off (and a cell limit as a backstop) the same notebook does not finish
    by itself; only the backstop stops it, after its full time, and nothing is re-run."""
    lines: list[str] = []
    monkeypatch.setenv("FTLAB_CELL_TIMEOUT", str(int(STALL * 3)))
    result, seconds = _run(tmp_path, _stall_book(tmp_path, stall_runs=1), lines, stall_seconds=0)
    assert result.status == "failed" and not result.retried and _runs(tmp_path) == 1
    assert seconds >= STALL * 3, f"{seconds:.1f} s: the request was not lost, so this test proves nothing"


def test_an_error_in_a_cell_is_not_re_run(tmp_path):
    counter = str(tmp_path / "runs.txt")
    book = _notebook(tmp_path, f"from pathlib import Path\nruns = Path({counter!r})\n"
                               "runs.write_text(runs.read_text() + 'x' if runs.exists() else 'x')",
                     "raise ValueError('a real error in the lesson')")
    lines: list[str] = []
    result, _ = _run(tmp_path, book, lines, stall_seconds=STALL)
    assert result.status == "failed" and result.error["ename"] == "ValueError"
    assert not result.retried and _runs(tmp_path) == 1 and not lines
    assert result.to_json()["retried"] is False and "retry_reason" not in result.to_json()


def test_a_long_cell_that_answers_is_not_a_stall(tmp_path):
    """A cell that runs longer than the stall window shows ``busy`` at once: it runs to its end, no re-run."""
    book = _notebook(tmp_path, f"import time\ntime.sleep({STALL * 2})\nprint('slept')")
    lines: list[str] = []
    result, seconds = _run(tmp_path, book, lines, stall_seconds=STALL)
    assert result.status == "ok" and not result.retried and not lines, (result.error, lines)
    assert seconds >= STALL * 2 and _printed(result.output) == ["slept\n"]


def test_a_kernel_that_dies_is_re_run_once(tmp_path):
    counter = str(tmp_path / "runs.txt")
    book = _notebook(tmp_path, f"from pathlib import Path\nimport os\nruns = Path({counter!r})\n"
                               "runs.write_text(runs.read_text() + 'x' if runs.exists() else 'x')\n"
                               "if len(runs.read_text()) == 1:\n    os._exit(1)",
                     "print('alive')")
    lines: list[str] = []
    result, seconds = _run(tmp_path, book, lines, stall_seconds=STALL)
    assert result.status == "ok" and result.retried and "died" in result.retry_reason, (result.error, lines)
    assert _runs(tmp_path) == 2 and seconds < 60


def test_ftlab_run_reports_the_re_run(tmp_path, capsys, monkeypatch):
    """``ftlab run``: the summary JSON keeps its keys and adds ``retried``; summary.md and the last line say it."""
    from argparse import Namespace

    from ftlab.runner import main_run

    books = tmp_path / "books"
    books.mkdir()
    _stall_book(books, stall_runs=1).rename(books / "00_stall.ipynb")
    (books / "book.ipynb").unlink(missing_ok=True)
    args = Namespace(parameter=None, out=str(tmp_path / "run"), only=None, notebooks=str(books), quiet=True,
                     allow_network=False)
    monkeypatch.setenv("FTLAB_STALL_SECONDS", str(STALL))
    assert main_run(args) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    nb = summary["notebooks"]["00_stall.ipynb"]
    assert {"status", "seconds", "figures", "executed", "retried", "retry_reason"} <= set(nb) and nb["retried"]
    assert summary["ok"] is True
    assert "Re-run once in a fresh kernel" in (tmp_path / "run" / "summary.md").read_text()
    err = capsys.readouterr()
    assert "1 re-run once after the kernel stopped answering" in err.err
    assert "re-running it once in a fresh kernel" in err.out + err.err


@pytest.mark.parametrize("raw", ["abc", "-3"])
def test_a_bad_stall_setting_is_named(raw, monkeypatch, tmp_path):
    from ftlab.errors import FtlabError

    monkeypatch.setenv("FTLAB_STALL_SECONDS", raw)
    with pytest.raises(FtlabError, match="FTLAB_STALL_SECONDS"):
        execute_notebook(_notebook(tmp_path, "1"), tmp_path / "o.ipynb", progress=False)


@pytest.mark.parametrize("raw, seconds", [("", None), ("0", None), ("none", None), ("120", 120), ("90.7", 90)])
def test_the_cell_timeout_setting(raw, seconds, monkeypatch):
    from ftlab.runner import _cell_timeout_from_env

    monkeypatch.setenv("FTLAB_CELL_TIMEOUT", raw)
    assert _cell_timeout_from_env() == seconds


@pytest.mark.parametrize("raw", ["abc", "-3"])
def test_a_bad_cell_timeout_is_named(raw, monkeypatch, tmp_path):
    from ftlab.errors import FtlabError

    monkeypatch.setenv("FTLAB_CELL_TIMEOUT", raw)
    with pytest.raises(FtlabError, match=r"FTLAB_CELL_TIMEOUT=.*0 means no limit"):
        execute_notebook(_notebook(tmp_path, "1"), tmp_path / "o.ipynb", progress=False)


@pytest.mark.parametrize("waking", [False, True], ids=["jupyter_client's channel", "ftlab's channel"])
def test_a_send_while_a_reply_is_awaited_does_not_lose_the_reply(tmp_path, waking):
    """The cause of the CI hang, at the socket level: a reply arrives while the client awaits it; before the event
    loop sees it, the client sends on the same socket (nbclient syncing an Output widget). jupyter_client's
    channel then never wakes: the reply sits unread. ftlab's channel re-checks the socket after its send."""
    import asyncio

    import zmq
    import zmq.asyncio
    from jupyter_client.channels import AsyncZMQSocketChannel
    from jupyter_client.session import Session

    from ftlab.kernelwatch import WakingShellChannel

    address = f"ipc://{tmp_path}/shell"
    kernel = zmq.Context().socket(zmq.ROUTER)
    kernel.bind(address)
    session = Session(key=b"")

    async def main() -> bool:
        dealer = zmq.asyncio.Context().socket(zmq.DEALER)
        dealer.connect(address)
        channel = (WakingShellChannel if waking else AsyncZMQSocketChannel)(dealer, session)
        channel.send(session.msg("execute_request", {"code": "1"}))
        ident, *_ = kernel.recv_multipart()  # the "kernel" has the request
        waiting = asyncio.ensure_future(channel.get_msg(timeout=None))
        await asyncio.sleep(0.1)  # the client now awaits the reply
        session.send(kernel, "execute_reply", {"status": "ok"}, ident=ident)
        time.sleep(0.3)  # the reply is in the client's socket; the event loop has not looked yet
        channel.send(session.msg("comm_msg", {"comm_id": "x", "data": {}}))  # an Output widget's state sync
        try:
            reply = await asyncio.wait_for(waiting, 3)
        except TimeoutError:
            return False
        finally:
            dealer.close(linger=0)
        return reply["msg_type"] == "execute_reply"

    try:
        got = asyncio.run(main())
    finally:
        kernel.close(linger=0)
    assert got is waking, "the reply was read" if got else "the reply sat unread: the waiting poll never woke"


def test_execute_notebook_uses_the_waking_channel():
    """``execute_notebook``'s kernels (``kernel_manager_class``) get clients with the fixed shell channel."""
    from ftlab.kernelwatch import WakingShellChannel
    from ftlab.runner import kernel_manager_class

    client = kernel_manager_class()(kernel_name="python3").client()
    assert client.shell_channel_class is WakingShellChannel
