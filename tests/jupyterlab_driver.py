"""Drive the notebooks in a real JupyterLab with Debian's Chromium, as a learner would.

Three pieces, each a context manager that always cleans up:

- ``jupyterlab_server(notebooks, workdir)`` starts ``jupyter lab`` on 127.0.0.1 (a free port, a
  random token, a temporary root holding copies of the notebooks, a fresh config, settings and
  workspace folder). News, update checks and the PyPI extension manager are off, so the server
  never reaches the network.
- ``chromium(workdir)`` launches Debian's ``chromium`` through Playwright (no Playwright browser
  download) with a fresh user-data-dir. ``FTLAB_HEADFUL=1`` shows the window, ``FTLAB_SLOWMO=250``
  slows every action down by that many milliseconds.
- ``LabPage`` is one notebook tab: open it, run all cells through the menu, wait, read kernel errors
  and widget failures back as one-line messages (``LabError``), take screenshots.

Used by ``tests/test_browser.py``; handy from a REPL too::

    with jupyterlab_server(["notebooks/02_cost_math.ipynb"], Path("lab")) as lab, \
         chromium(Path("lab")) as ctx:
        page = LabPage(ctx, lab)
        page.open("02_cost_math.ipynb")
        page.run_all()
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Belt and braces: the browser resolves no host name but the loopback ones.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
WIDGET_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
VISIBLE_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class LabError(AssertionError):
    """What went wrong in the browser, in one line a learner would understand (plus details)."""


def headful() -> bool:
    return os.environ.get("FTLAB_HEADFUL", "") not in ("", "0", "false", "no")


def chromium_path() -> str | None:
    """Debian's Chromium binary, or None where it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------
@dataclass
class Lab:
    """A running JupyterLab: where it listens, its token, its root folder and its log file."""

    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen = field(repr=False)

    def lab_url(self, path: str = "", *, workspace: str = "") -> str:
        """The lab's address opening ``path``; a named ``workspace`` starts empty (``reset``), not with old tabs."""
        base = f"{self.url}/lab" + (f"/workspaces/{workspace}" if workspace else "")
        return f"{base}/tree/{path}?reset&token={self.token}" if path else f"{base}?reset&token={self.token}"

    def api(self, path: str) -> Any:
        req = urllib.request.Request(f"{self.url}/api/{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read().decode())

    def log_tail(self, lines: int = 30) -> str:
        """The last warnings and errors of the server and its kernels (info lines left out)."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        kept = [line for line in text if not line.startswith("[I ")]
        return "\n".join(kept[-lines:]) or "(no warnings in the server log)"


def _lab_config(workdir: Path, disabled_extensions: Iterable[str] = ()) -> dict[str, Path]:
    """A fresh Jupyter config: nothing of the user's own setup, nothing that reaches the network."""
    dirs = {name: workdir / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    config = {
        "LabApp": {
            "news_url": None,  # no Atom feed fetch
            "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "extension_manager": "readonly",  # no PyPI queries
            "expose_app_in_browser": True,  # window.jupyterapp: the tests read kernel state through it
            "user_settings_dir": str(dirs["settings"]),
            "workspaces_dir": str(dirs["workspaces"]),
        },
        "ServerApp": {"open_browser": False},
        "LanguageServerManager": {"autodetect": False},
    }
    (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(config, indent=1))
    # The front end's side of the same switches, plus no "would you like news?" toast.
    notify = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notify.parent.mkdir(parents=True, exist_ok=True)
    notify.write_text(json.dumps({"checkForUpdates": False, "fetchNews": "false"}))
    if disabled_extensions:  # what a broken install looks like, for the tests of the tests
        page_config = dirs["config"] / "labconfig" / "page_config.json"
        page_config.parent.mkdir(parents=True, exist_ok=True)
        page_config.write_text(json.dumps({"disabledExtensions": dict.fromkeys(disabled_extensions, True)}))
    return dirs


@contextlib.contextmanager
def jupyterlab_server(notebooks: Iterable[Path], workdir: Path, *, timeout: float = 60.0,
                      disabled_extensions: Iterable[str] = ()) -> Iterator[Lab]:
    """Start JupyterLab on 127.0.0.1 with copies of ``notebooks`` in a fresh root; stop it whatever happens.

    The kernels import this checkout's ``ftlab`` (``PYTHONPATH``) and run offline (``FTLAB_OFFLINE=1``).
    ``disabled_extensions`` switches lab extensions off (to see how the tests fail without one).
    """
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        shutil.copy2(nb, root / Path(nb).name)
    dirs = _lab_config(workdir, disabled_extensions)
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
    env.update({
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "FTLAB_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    })
    env.pop("OPENAI_API_KEY", None)
    log = workdir / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--ServerApp.terminals_enabled=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI and these machines run as root
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log, proc)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise LabError(f"JupyterLab exited with code {proc.returncode} before it served a page; "
                               f"its log ({log}):\n{lab.log_tail()}")
            try:
                lab.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise LabError(f"JupyterLab did not answer on {lab.url} within {timeout:.0f} s; "
                                   f"its log ({log}):\n{lab.log_tail()}") from None
                time.sleep(0.25)
        yield lab
    finally:
        _stop(proc)


def _die_with_parent() -> None:
    """Linux: SIGTERM the server if pytest itself is killed (its kernels then follow their parent)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the server's process group (server and kernels), then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# ---------------------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def chromium(workdir: Path, *, viewport: tuple[int, int] = (1400, 1000)) -> Iterator[Any]:
    """A Playwright browser context on Debian's Chromium with a fresh user-data-dir; closed whatever happens."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise LabError("Debian's chromium is not installed: `apt-get install -y chromium` (or `bash scripts/setup.sh test` as root)")
    profile = workdir / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=exe,
            headless=not headful(),
            args=CHROMIUM_FLAGS,
            viewport={"width": viewport[0], "height": viewport[1]},
            slow_mo=float(os.environ.get("FTLAB_SLOWMO", "0") or 0),
            timeout=60_000,
        )
        try:
            yield ctx
        finally:
            ctx.close()


# ---------------------------------------------------------------------------------------
# One notebook in the browser
# ---------------------------------------------------------------------------------------
_STATE_JS = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  if (!w || !w.content || !w.content.model) return {ready: false};
  const ctx = w.sessionContext;
  const kernel = ctx && ctx.session && ctx.session.kernel;
  const cells = [];
  const model = w.content.model;
  for (let i = 0; i < model.cells.length; i++) {
    const c = model.cells.get(i);
    if (c.type !== 'code') continue;
    const errors = [];
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j).toJSON();
      if (o.output_type === 'error') errors.push(`${o.ename}: ${o.evalue}`);
    }
    cells.push({index: i, count: c.executionCount, errors: errors,
                source: c.sharedModel.getSource().split('\\n')[0].slice(0, 80)});
  }
  const prompts = Array.from(w.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')).map(p => p.textContent.trim());
  return {ready: true, path: ctx.path, kernel: kernel ? kernel.status : null,
          kernelName: kernel ? kernel.name : null, busy: prompts.filter(p => p.includes('*')).length,
          cells: cells};
}"""


_WIDGETS_JS = """(mime) => {
  const w = window.jupyterapp.shell.currentWidget;
  const found = [];
  w.content.widgets.forEach((cell, i) => {
    if (cell.model.type !== 'code') return;
    const outs = cell.model.outputs;
    for (let j = 0; j < outs.length; j++) {
      const o = outs.get(j).toJSON();
      if (!o.data || !o.data[mime]) continue;
      const child = cell.outputArea.widgets[j];
      const node = child ? child.node.querySelector('.jp-OutputArea-output') : null;
      found.push({cell: i, model_id: o.data[mime].model_id,
                  mime: node ? node.getAttribute('data-mime-type') : null,
                  rendered: !!(node && node.querySelector('.jupyter-widgets')) &&
                            !node.innerText.includes('Error displaying widget'),
                  text: node ? node.innerText.slice(0, 300) : null});
    }
  });
  return found;
}"""


_HOOK_JS = """() => {
  // Record every error the kernel publishes, including those of widget callbacks (parent: comm_msg),
  // which JupyterLab shows only in its log console.
  const w = window.jupyterapp.shell.currentWidget;
  window.__ftlabKernelErrors = window.__ftlabKernelErrors || [];
  if (w.__ftlabHooked) return;
  w.__ftlabHooked = true;
  w.sessionContext.iopubMessage.connect((_, msg) => {
    if (msg.header.msg_type !== 'error') return;
    window.__ftlabKernelErrors.push({path: w.sessionContext.path,
      parent: msg.parent_header ? msg.parent_header.msg_type : null,
      error: `${msg.content.ename}: ${msg.content.evalue}`});
  });
}"""


class LabPage:
    """One browser tab on the lab. Actions click and type; checks raise ``LabError`` with a one-line reason."""

    def __init__(self, ctx: Any, lab: Lab, *, name: str = "lab") -> None:
        self.ctx, self.lab, self.name = ctx, lab, name
        self.page = ctx.new_page()
        self.page.set_default_timeout(30_000)
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.external_requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("request", self._on_request)
        self.shots: list[Path] = []

    def _on_request(self, req: Any) -> None:
        url = req.url
        if not url.startswith((self.lab.url, "data:", "blob:", "about:")):
            self.external_requests.append(url)

    def _workspace(self) -> str:
        self._opened = getattr(self, "_opened", 0) + 1
        return "".join(ch if ch.isalnum() else "-" for ch in f"{self.name}-{self._opened}")

    # -- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return self.page.evaluate(_STATE_JS)

    def dialogs(self) -> list[str]:
        return [t.strip().replace("\n", " ")[:300] for t in self.page.locator(".jp-Dialog").all_inner_texts()]

    def screenshot(self, label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{len(self.shots):02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=False)
        self.shots.append(path)
        return path

    def fail(self, message: str, label: str = "failure") -> LabError:
        """A ``LabError`` carrying the message, a screenshot and the server log's tail."""
        try:
            shot = self.screenshot(label)
            where = f" (screenshot: {shot})"
        except Exception as exc:  # the browser itself may be gone
            where = f" (no screenshot: {exc})"
        extra = ""
        if self.page_errors:
            extra += "\nbrowser errors: " + " | ".join(self.page_errors[:5])
        return LabError(f"{message}{where}{extra}\nJupyterLab log tail:\n{self.lab.log_tail(15)}")

    # -- actions ---------------------------------------------------------------------------
    def open(self, notebook: str, *, timeout: float = 60.0, check_extension: bool = True) -> dict[str, Any]:
        """Open a notebook from the lab's root and wait until its kernel is idle. Returns ``state()``."""
        self.page.goto(self.lab.lab_url(notebook, workspace=self._workspace()), wait_until="domcontentloaded")
        if check_extension:
            self.check_widget_extension()
        deadline = time.monotonic() + timeout
        st: dict[str, Any] = {}
        while time.monotonic() < deadline:
            st = self.state()
            if self.dialogs():
                raise self.fail(f"opening {notebook} shows a dialog: {self.dialogs()[0]!r}", "dialog")
            if st.get("ready") and st.get("path") == notebook and st.get("kernel") == "idle":
                self.page.locator(f"{VISIBLE_NOTEBOOK} .jp-Cell").first.wait_for()
                self.page.evaluate(_HOOK_JS)
                return st
            if st.get("kernel") == "dead":
                raise self.fail(f"the kernel of {notebook} died while starting", "kernel-dead")
            time.sleep(0.25)
        raise self.fail(f"{notebook} did not open with an idle kernel within {timeout:.0f} s "
                        f"(last state: path={st.get('path')!r}, kernel={st.get('kernel')!r})", "open-timeout")

    def check_widget_extension(self) -> None:
        """The ipywidgets front end must be among the lab's federated extensions, else no widget can show."""
        raw = self.page.locator("#jupyter-config-data").text_content(timeout=30_000)
        config = json.loads(raw or "{}")
        names = [e.get("name") for e in config.get("federated_extensions", [])]
        disabled = config.get("disabledExtensions", [])
        if WIDGET_EXTENSION not in names or WIDGET_EXTENSION in disabled:
            raise self.fail(f"the ipywidgets JupyterLab extension {WIDGET_EXTENSION} is missing or disabled "
                            f"(installed: {names}); install jupyterlab_widgets in the server's environment",
                            "no-widget-extension")

    def menu(self, menu: str, item: str) -> None:
        """Click a top-level menu, then the item with that label (``menu("Run", "Run All Cells")``)."""
        self.page.locator(".lm-MenuBar-item", has_text=menu).first.click()
        self.page.locator(f".lm-Menu-item:not(.lm-mod-disabled):has(.lm-Menu-itemLabel:text-is('{item}'))").first.click()

    def run_all(self, *, timeout: float = 90.0) -> dict[str, Any]:
        """Run > Run All Cells, wait until no cell is busy; raise on a kernel error or a dead kernel."""
        self.menu("Run", "Run All Cells")
        deadline = time.monotonic() + timeout
        st = self.state()
        started = False
        while time.monotonic() < deadline:
            st = self.state()
            if st.get("kernel") == "dead" or any("Kernel" in d and ("Dead" in d or "Restarting" in d) for d in self.dialogs()):
                raise self.fail(f"the kernel of {st.get('path')} died while running all cells", "kernel-dead")
            errors = [(c["index"], e, c["source"]) for c in st["cells"] for e in c["errors"]]
            if errors:
                i, err, src = errors[0]
                # Let JupyterLab finish cancelling the queue so the screenshot shows the traceback.
                self._settle(st)
                raise self.fail(f"kernel error in {st.get('path')} cell {i} ({src!r}): {err}", "kernel-error")
            started = started or st["busy"] > 0 or all(c["count"] for c in st["cells"])
            if started and st["busy"] == 0 and st.get("kernel") == "idle":
                missing = [c["index"] for c in st["cells"] if not c["count"]]
                if missing:
                    raise self.fail(f"run all left cells {missing} of {st.get('path')} unexecuted", "not-run")
                return st
            time.sleep(0.25)
        busy = [c for c in st.get("cells", []) if not c["count"]]
        raise self.fail(f"running all cells of {st.get('path')} did not finish within {timeout:.0f} s "
                        f"(still waiting on cell {busy[0]['index'] if busy else '?'}: "
                        f"{busy[0]['source'] if busy else ''!r})", "run-timeout")

    def _settle(self, st: dict[str, Any], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (st.get("busy") or st.get("kernel") != "idle"):
            time.sleep(0.2)
            st = self.state()

    def widget_outputs(self) -> list[dict[str, Any]]:
        """Each widget output of the open notebook (from the kernel's messages) and what the page shows for it."""
        return self.page.evaluate(_WIDGETS_JS, WIDGET_MIME)

    def check_widgets(self, *, expect: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Wait until every widget output renders as a widget; at least ``expect`` of them.

        Fails on "Error displaying widget" (the front end lost the model) and on a widget shown as its
        text repr such as ``VBox(children=...)`` (the ipywidgets extension is missing).
        """
        deadline = time.monotonic() + timeout
        while True:
            outs = self.widget_outputs()
            for o in outs:
                if "Error displaying widget" in (o["text"] or ""):
                    raise self.fail(f"cell {o['cell']}: {o['text'].strip().splitlines()[0]!r} "
                                    f"(widget model {o['model_id']})", "widget-error")
                if o["mime"] and o["mime"] != WIDGET_MIME and not o["rendered"]:
                    raise self.fail(f"cell {o['cell']}: the widget shows as {o['mime']} "
                                    f"({(o['text'] or '').strip()[:80]!r}), not as a widget: is the ipywidgets "
                                    "JupyterLab extension installed?", "widget-as-text")
            if len(outs) >= expect and all(o["rendered"] for o in outs):
                return outs
            if time.monotonic() > deadline:
                pending = [o["cell"] for o in outs if not o["rendered"]]
                raise self.fail(f"{len(outs)} widget output(s) (expected at least {expect}); cells {pending} "
                                f"never rendered within {timeout:.0f} s", "widget-timeout")
            time.sleep(0.25)

    def callback_errors(self) -> list[str]:
        """Errors the kernel raised outside a cell run: widget callbacks (``observe``) and the like."""
        errs = self.page.evaluate("() => window.__ftlabKernelErrors || []")
        return [f"{e['path']}: {e['error']} (in reply to {e['parent']})" for e in errs if e["parent"] != "execute_request"]

    def wait_for(self, what: str, probe: Any, expected: Any, *, timeout: float = 20.0) -> Any:
        """Poll ``probe()`` until it returns ``expected``; on timeout raise a message with both values.

        A widget callback that raises in the kernel fails at once, with its exception.
        """
        deadline = time.monotonic() + timeout
        got = None
        while True:
            raised = self.callback_errors()
            if raised:
                raise self.fail(f"{what}: a widget callback raised in the kernel: {raised[0]}", "callback-error")
            try:
                got = probe()
            except Exception as exc:
                got = f"<{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}>"
            if got == expected:
                return got
            if time.monotonic() > deadline:
                raise self.fail(f"{what}: expected {expected!r}, the page shows {got!r} after {timeout:.0f} s "
                                "(did the widget callback run?)", "mismatch")
            time.sleep(0.2)

    def kernel_errors_anywhere(self) -> list[str]:
        """Error outputs in the open notebook's cells plus errors raised by widget callbacks."""
        st = self.state()
        return [f"cell {c['index']}: {e}" for c in st.get("cells", []) for e in c["errors"]] + self.callback_errors()

    # -- widgets, as a person uses them ------------------------------------------------------
    def widget(self, css_class: str) -> Any:
        """The (one) widget carrying ``css_class`` in the open notebook, scrolled into view."""
        loc = self.page.locator(f"{VISIBLE_NOTEBOOK} .{css_class}")
        if loc.count() != 1:
            raise self.fail(f"expected one widget with class {css_class!r}, found {loc.count()}", "no-widget")
        loc.scroll_into_view_if_needed()
        return loc

    def drag_slider(self, css_class: str, value: float) -> float:
        """Drag an ipywidgets slider's handle with the mouse to ``value``; returns what its readout then says."""
        box = self.widget(css_class)
        handle = box.locator(".noUi-handle")
        lo, hi = float(handle.get_attribute("aria-valuemin")), float(handle.get_attribute("aria-valuemax"))
        track = box.locator(".noUi-base").bounding_box()
        hb = handle.bounding_box()
        assert track and hb, f"the slider {css_class} is not visible"
        x = track["x"] + (value - lo) / (hi - lo) * track["width"]
        y = hb["y"] + hb["height"] / 2
        mouse = self.page.mouse
        mouse.move(hb["x"] + hb["width"] / 2, y)
        mouse.down()
        mouse.move(x, y, steps=12)
        mouse.up()
        return float(box.locator(".widget-readout").inner_text())

    def type_into_slider(self, css_class: str, value: int) -> None:
        """Click a slider's number, select it, type a new one and press Enter (what a learner does)."""
        readout = self.widget(css_class).locator(".widget-readout")
        readout.click(click_count=3)
        self.page.keyboard.type(str(value))
        self.page.keyboard.press("Enter")

    def type_into_number(self, css_class: str, value: int) -> None:
        """Replace the number in an IntText/BoundedIntText and press Enter."""
        field_ = self.widget(css_class).locator("input")
        field_.click(click_count=3)
        self.page.keyboard.type(str(value))
        self.page.keyboard.press("Enter")

    def choose(self, css_class: str, label: str) -> None:
        """Pick an option of a Dropdown by its visible label."""
        self.widget(css_class).locator("select").select_option(label=label)

    def html_table(self, css_class: str) -> list[list[str]]:
        """The body rows of the table inside an HTML widget, as cell texts."""
        return self.widget(css_class).locator("tbody tr").evaluate_all(
            "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))")

    def text(self, selector: str) -> str:
        loc = self.page.locator(f"{VISIBLE_NOTEBOOK} {selector}")
        return loc.first.inner_text().strip()

    def image(self, css_class: str) -> bytes:
        """The PNG an Output widget shows, decoded from its data URL."""
        import base64

        src = self.widget(css_class).locator("img").first.get_attribute("src") or ""
        prefix = "data:image/png;base64,"
        if not src.startswith(prefix):
            raise ValueError(f"no PNG in {css_class}: src starts {src[:40]!r}")
        return base64.b64decode(src[len(prefix):])

    def element_shot(self, css_class: str, label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{len(self.shots):02d}-{label}.png"
        self.widget(css_class).screenshot(path=str(path))
        self.shots.append(path)
        return path
