"""Notebook kernels that stop answering: the cause found in CI, fixed, and a watch for whatever else does it.

The fix: :class:`WakingShellChannel`. CI's hang was a cell that ran and went idle while its ``execute_reply`` sat
unread in the client's shell socket: ``jupyter_client`` sends through a blocking copy of the asyncio socket, which
can swallow the socket's wake-up, and nbclient sends while it waits when an ``ipywidgets.Output`` gets output.

The watch: papermill (through nbclient) sends a cell's ``execute_request`` and waits for the reply. A kernel that
received the request says so at once on IOPub (``status: busy`` with the request as parent), however long the cell
then runs. A request that shows no sign of life within ``stall_seconds``, or a cell that went idle and whose reply
has not come for as long, is a stall: :class:`WatchedClient` raises :class:`KernelStalled`, and
``ftlab.runner.execute_notebook`` re-runs the notebook once in a fresh kernel and says so. A long cell that shows
``busy`` is never a stall.

Example: ``FTLAB_STALL_SECONDS=60`` (the default) fails a cell whose request shows no sign of life in 60 s;
``FTLAB_STALL_SECONDS=0`` turns the watch off.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from nbclient.exceptions import DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args
from traitlets import Float, Type

from ftlab.errors import FtlabError

__all__ = ["DEFAULT_STALL_SECONDS", "ENGINE", "KernelStalled", "WakingKernelClient", "WakingShellChannel",
           "WatchedClient", "WatchedEngine", "seconds_from_env", "stall_reason", "stall_seconds_from_env"]

ENGINE = "ftlab-watched"  # the papermill engine name ``execute_notebook`` asks for
DEFAULT_STALL_SECONDS = 60.0
NUDGE_SECONDS = 5.0  # after a stall, how long a second request may take to wake the first (diagnosis only)


class KernelStalled(FtlabError):
    """The kernel showed no sign of having received a request (no ``busy``, no output, no reply) in time."""


def seconds_from_env(name: str, default: float, off: str) -> float:
    """Seconds from the environment variable ``name`` (``default`` when unset; ``0`` or ``none``: 0). Text that is
    not a number, or a negative number, raises a one-line error saying what 0 means (``off``).

    Example: ``seconds_from_env("FTLAB_STALL_SECONDS", 60, "turns the watch off")`` is 60.0 when unset.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() == "none":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise FtlabError(f"{name}={raw!r} is not a number of seconds (e.g. 60; 0 {off})") from None
    if value < 0:
        raise FtlabError(f"{name}={raw!r} is negative: give seconds (e.g. 60; 0 {off})")
    return value


def stall_seconds_from_env() -> float:
    """``FTLAB_STALL_SECONDS`` (default 60; ``0`` turns the watch off). Bad text raises a one-line error."""
    return seconds_from_env("FTLAB_STALL_SECONDS", DEFAULT_STALL_SECONDS, "turns the watch off")


def stall_reason(exc: BaseException) -> str | None:
    """Why a failed run is worth one re-run in a fresh kernel, or ``None`` (an error in a cell, a cell timeout...)."""
    if isinstance(exc, KernelStalled):
        return str(exc)
    if isinstance(exc, DeadKernelError):
        return f"the kernel died ({exc})"
    if isinstance(exc, RuntimeError) and "Kernel didn't respond" in str(exc):
        return f"the kernel did not start answering ({exc})"
    return None


class WakingShellChannel(AsyncZMQSocketChannel):
    """The client's shell channel, with the fix for the reply that was never read (the CI hang).

    ``jupyter_client.Session.send`` sends through a blocking shadow of the asyncio socket, so pyzmq's asyncio layer
    never learns of the send. A send runs libzmq's command processing, which can consume the socket's
    edge-triggered "readable" wake-up: a reply that arrives then sits unread while the pending ``poll`` for it waits
    forever. nbclient sends on the shell channel while it waits for a reply when an ``ipywidgets.Output`` receives
    output (it syncs the widget's state back: ``comm_msg``), as ``cost.cost_explorer``'s plot does. Reading
    ``EVENTS`` through the asyncio socket after each send re-checks the socket and wakes a waiting ``poll``.
    """

    def send(self, msg: dict[str, Any]) -> None:
        """Send, then re-check the socket so that a reply that came meanwhile wakes its waiting ``poll``."""
        super().send(msg)
        if self.socket is not None and not self.socket.closed:
            self.socket.get(zmq.EVENTS)  # zmq.asyncio schedules the pending recv/poll when a message is waiting


class WakingKernelClient(AsyncKernelClient):
    """jupyter_client's asyncio kernel client with :class:`WakingShellChannel` (``kernel_manager_class`` uses it)."""

    shell_channel_class = Type(WakingShellChannel)  # type: ignore[assignment]


class WatchedClient(PapermillNotebookClient):
    """papermill's notebook client, plus the stall watch: a request without any answer in ``stall_seconds``
    raises :class:`KernelStalled` (and the kernel is then shut down at once, not gracefully)."""

    stall_seconds = Float(DEFAULT_STALL_SECONDS, help="seconds a request may go without busy/output/reply; 0: off",
                          config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answered: set[str] = set()
        self._idle: dict[str, float] = {}

    def process_message(self, msg: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """Note that the kernel answered this request (any IOPub message with it as parent) and when it went idle,
        then process the message."""
        parent = msg.get("parent_header", {}).get("msg_id", "")
        self._answered.add(parent)
        if msg.get("msg_type") == "status" and msg.get("content", {}).get("execution_state") == "idle":
            self._idle.setdefault(parent, time.monotonic())
        return super().process_message(msg, *args, **kwargs)

    def _stalled(self, what: str) -> KernelStalled:
        self.shutdown_kernel = "immediate"  # a wedged kernel need not be asked to clean up
        return KernelStalled(f"the kernel stopped answering: {what} (FTLAB_STALL_SECONDS={self.stall_seconds:g})")

    async def _nudge(self, msg_id: str, reply: asyncio.Future) -> str:
        """Diagnosis only: send one more request on the shell socket and see whether the lost one then shows life.
        If it does, the request was stranded unread in the kernel (a lost wake-up on its socket, the failure
        of ipykernel issue 1554); if not, it was lost before, or the kernel cannot read at all."""
        assert self.kc is not None
        self.kc.kernel_info()
        await asyncio.wait({reply}, timeout=NUDGE_SECONDS)
        if reply.done() or msg_id in self._answered:
            return (f"; a kernel_info request sent after it woke the kernel within {NUDGE_SECONDS:g} s (the request had "
                    "sat unread in the kernel's shell socket)")
        return f"; a kernel_info request sent after it did not wake it within {NUDGE_SECONDS:g} s"

    def _reply_waiting(self) -> str:
        """Diagnosis only: is a message waiting unread in the client's shell socket?"""
        import zmq

        try:
            waiting = bool(self.kc.shell_channel.socket.getsockopt(zmq.EVENTS) & zmq.POLLIN)  # type: ignore[union-attr]
        except Exception as exc:  # a closed socket, another client class
            return f"; the client's shell socket could not be asked ({type(exc).__name__})"
        if waiting:
            return "; a message was waiting unread in the client's shell socket (a lost wake-up in the client)"
        return "; the client's shell socket held no message (the reply never reached the client)"

    async def _async_poll_for_reply(self, msg_id: str, cell: Any, timeout: int | None,
                                    task_poll_output_msg: asyncio.Future, task_poll_kernel_alive: asyncio.Future
                                    ) -> dict[str, Any]:
        if not self.stall_seconds:
            return await super()._async_poll_for_reply(msg_id, cell, timeout, task_poll_output_msg,
                                                       task_poll_kernel_alive)
        reply = asyncio.ensure_future(super()._async_poll_for_reply(
            msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive))
        first = (cell.get("source") or "").strip().splitlines()[:1]
        name = f"the cell starting {first[0][:60]!r}" if first else "a cell"
        started = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait({reply}, timeout=min(1.0, self.stall_seconds))
                if done:
                    return reply.result()
                now, idle = time.monotonic(), self._idle.get(msg_id)
                if msg_id not in self._answered and now - started > self.stall_seconds:
                    what = f"{name} got no busy status, output or reply in {self.stall_seconds:g} s"
                    what += await self._nudge(msg_id, reply)
                elif idle is not None and now - idle > self.stall_seconds:
                    what = (f"{name} ran and went idle, but its execute_reply did not come in {self.stall_seconds:g} s"
                            + self._reply_waiting())
                else:
                    continue
                task_poll_kernel_alive.cancel()
                raise self._stalled(what)
        finally:
            if not reply.done():
                reply.cancel()

    async def async_wait_for_reply(self, msg_id: str, cell: Any = None) -> dict[str, Any] | None:
        """Wait for a reply; the request that papermill sends after the cells (``kernel_info``) is watched too."""
        if cell is not None or not self.stall_seconds:
            return await super().async_wait_for_reply(msg_id, cell)
        try:
            return await asyncio.wait_for(super().async_wait_for_reply(msg_id, cell), self.stall_seconds)
        except TimeoutError:
            raise self._stalled(f"the kernel_info request after the last cell got no reply in {self.stall_seconds:g} s") from None


class WatchedEngine(NBClientEngine):
    """papermill's nbclient engine with :class:`WatchedClient` in place of its client."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                 stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                 execution_timeout: int | None = None, **kwargs: Any) -> Any:
        """As papermill's engine (the same arguments), with the stall watch on the client."""
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(safe_kwargs, timeout=execution_timeout or kwargs.get("timeout"),
                                    startup_timeout=start_timeout, kernel_name=kernel_name, log=logger,
                                    log_output=log_output, stdout_file=stdout_file,
                                    stderr_file=stderr_file)
        return WatchedClient(nb_man, **final_kwargs).execute()


papermill_engines.register(ENGINE, WatchedEngine)
