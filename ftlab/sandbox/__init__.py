"""A local OpenAI-compatible fine-tuning API: the real ``openai`` SDK works unchanged via ``base_url``.

Not a mock: uploaded files are stored, jobs are validated with ftlab's validator and really
fine-tune the local toy model with LoRA, and ``ft:`` models answer chat completions with what
they learned. State lives on disk, so a restart loses no files or jobs.

Example::

    from ftlab.sandbox import Sandbox

    with Sandbox("/tmp/sbx") as sbx:
        client = sbx.client()                     # openai.OpenAI(base_url=sbx.url, api_key="sandbox")
        f = client.files.create(file=open("train.jsonl", "rb"), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=f.id)

``ftlab sandbox --port 8000`` serves the same API from the command line.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from ftlab.sandbox.server import App, Faults, SandboxHTTPServer

__all__ = ["Faults", "Sandbox", "SandboxProcess"]

SANDBOX_API_KEY = "sk-ftlab-sandbox-local"  # not a secret: the sandbox accepts any bearer key


class Sandbox:
    """Start and stop the sandbox in this process (a server thread and a job-runner thread)."""

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 faults: Faults | dict[str, Any] | None = None, toy_seed: int = 0, verbose: bool = False,
                 as_of: str | None = None, org_status: str | None = None, base_model: str | None = None):
        from ftlab.core import cache_dir
        from ftlab.sandbox.gate import WindDownGate

        self.data_dir = Path(data_dir) if data_dir else cache_dir("sandbox")
        # as_of / org_status: emulate OpenAI's fine-tuning wind-down on that date (ftlab.sandbox.gate)
        self.gate = WindDownGate(as_of, org_status) if (as_of or org_status) else None
        self.host, self.port = host, port
        self.faults = Faults(**faults) if isinstance(faults, dict) else (faults or Faults())
        self.toy_seed = toy_seed
        self.base_model = base_model  # the local model jobs fine-tune (None: the toy)
        self.verbose = verbose
        self.server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to give the SDK, e.g. ``http://127.0.0.1:53211/v1``."""
        if self.server is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return f"http://{self.host}:{self.server.server_address[1]}/v1"

    def start(self) -> Sandbox:
        from ftlab.sandbox.inference import Inference
        from ftlab.sandbox.jobs import Runner
        from ftlab.sandbox.store import Store

        store = Store(self.data_dir)
        self.runner = Runner(store, toy_seed=self.toy_seed, base_model=self.base_model)
        self.app = App(store, self.runner, Inference(self.toy_seed, base_model=self.base_model), self.faults, self.gate)
        try:
            self.server = SandboxHTTPServer((self.host, self.port), self.app, verbose=self.verbose)
        except OSError:
            store.close()
            raise
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="ftlab-sandbox-http", daemon=True)
        self._thread.start()
        self.runner.start()
        return self

    def stop(self) -> None:
        """Stop serving. A job still training is marked failed (it cannot resume)."""
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.runner.stop()
        self.runner.store.close()
        self.server = None

    def client(self, **kwargs: Any):
        """An ``openai.OpenAI`` client pointed at this sandbox (extra kwargs go to the client)."""
        from openai import OpenAI

        return OpenAI(base_url=self.url, api_key=SANDBOX_API_KEY, **kwargs)

    def azure_client(self, api_version: str = "2025-04-01-preview", **kwargs: Any):
        """An ``openai.AzureOpenAI`` client pointed at this sandbox's Azure-shaped routes (``/openai/...``)."""
        from openai import AzureOpenAI

        endpoint = self.url.removesuffix("/v1")
        return AzureOpenAI(azure_endpoint=endpoint, api_key=SANDBOX_API_KEY, api_version=api_version, **kwargs)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.url if self.server else "stopped"
        return f"Sandbox({str(self.data_dir)!r}, {state})"


class SandboxProcess:
    """The sandbox in its own process (``python -m ftlab sandbox``): training and its logs stay out of
    the caller's process. The server's output goes to ``<data_dir>/sandbox.log``.

    Same interface as ``Sandbox``: ``start()``, ``url``, ``client()``, ``stop()``, a context manager.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *, port: int = 0, fault_rate: float = 0.0,
                 toy_seed: int = 0, startup_timeout_s: float = 60.0, verbose: bool = False,
                 base_model: str | None = None):
        from ftlab.core import cache_dir

        self.data_dir = Path(data_dir) if data_dir else cache_dir("sandbox")
        self.port, self.fault_rate, self.toy_seed = port, fault_rate, toy_seed
        self.base_model = base_model
        self.verbose = verbose  # log every request line to sandbox.log
        self.startup_timeout_s = startup_timeout_s
        self.proc = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return self._url

    @property
    def log_path(self) -> Path:
        return self.data_dir / "sandbox.log"

    def start(self) -> SandboxProcess:
        import subprocess
        import sys
        import time

        from ftlab.errors import FtlabError

        self.data_dir.mkdir(parents=True, exist_ok=True)
        ready = self.data_dir / ".url"
        ready.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "ftlab", "sandbox", "--port", str(self.port), "--data-dir", str(self.data_dir),
               "--fault-rate", str(self.fault_rate), "--toy-seed", str(self.toy_seed), "--url-file", str(ready),
               "--exit-with-parent", *(["--verbose"] if self.verbose else []),
               *(["--base-model", self.base_model] if self.base_model else [])]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if ready.exists() and ready.read_text().strip():
                self._url = ready.read_text().strip()
                import atexit

                atexit.register(self.stop)  # never leave a server behind
                return self
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
                raise FtlabError(f"the sandbox process exited with code {self.proc.returncode}: {tail[0]}")
            time.sleep(0.05)
        self.stop()
        raise FtlabError(f"the sandbox did not start within {self.startup_timeout_s:.0f} s; see {self.log_path}")

    def stop(self, timeout_s: float = 30.0) -> None:
        import subprocess

        if self.proc is None:
            return
        if self.proc.poll() is None:
            import time

            start = self.log_path.stat().st_size if self.log_path.exists() else 0
            self.proc.terminate()
            # The server prints "stopped" once its state is saved; the interpreter's teardown after
            # that (torch and friends) takes seconds and saves nothing, so it is cut short.
            deadline = time.monotonic() + timeout_s
            while self.proc.poll() is None and time.monotonic() < deadline:
                with self.log_path.open("rb") as f:
                    f.seek(start)
                    if b"ftlab sandbox: stopped" in f.read():
                        break
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout_s)
        self.proc = None
        self._url = None

    def client(self, **kwargs: Any):
        from openai import OpenAI

        return OpenAI(base_url=self.url, api_key=SANDBOX_API_KEY, **kwargs)

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
