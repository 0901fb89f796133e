"""``ftlab run``: execute the numbered notebooks headless through papermill.

Each run writes into ``runs/<timestamp>/`` (or ``--out``): the executed notebooks,
``summary.json`` with every notebook's status, seconds and recorded figures, and
``summary.md`` with the figures and the plots.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError
from ftlab.figures import read_figures
from ftlab.params import reject_secrets

__all__ = ["NUMBERED", "NotebookResult", "build_toy_first", "declared_parameters", "execute_notebook", "find_notebooks_dir",
           "kernel_manager_class", "main_run", "numbered_notebooks", "parse_value", "resolve_notebook", "run_all"]


NUMBERED = re.compile(r"^(\d\d)_[\w-]+\.ipynb$")


def find_notebooks_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder of numbered notebooks: ``explicit``, ``./notebooks``, or the one beside the package."""
    candidates = [Path(explicit)] if explicit else [Path.cwd() / "notebooks", Path(__file__).resolve().parent.parent / "notebooks"]
    for c in candidates:
        if c.is_dir() and any(NUMBERED.match(p.name) for p in c.iterdir()):
            return c
    raise FtlabError(
        f"no numbered notebooks found in {', '.join(map(str, candidates))}; run from the ftlab checkout or pass --notebooks DIR"
    )


def numbered_notebooks(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The ``NN_name.ipynb`` files in order, optionally only those whose number or name matches ``only``."""
    books = sorted(p for p in folder.iterdir() if NUMBERED.match(p.name))
    if only:
        wanted = [o.removesuffix(".ipynb") for o in only]
        chosen = [p for p in books if any(p.stem == w or p.stem.startswith(w + "_") or p.stem[:2] == w for w in wanted)]
        if not chosen:
            raise FtlabError(f"--only {' '.join(only)} matches no notebook; choose from: {', '.join(p.stem for p in books)}")
        return chosen
    return books


def parse_value(raw: str) -> Any:
    """A parameter value from the command line, read as YAML: ``3`` -> 3, ``2e-4`` -> 0.0002, ``true`` -> True.

    Text that is not valid YAML stays text. (YAML 1.1 reads ``2e-4`` as text; a number is meant.)
    """
    import yaml

    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if type(value).__name__ in ("date", "datetime"):  # YAML reads 2026-04-30 as a date; notebooks take dates as text
        return raw.strip()
    if isinstance(value, str):
        try:
            return float(value) if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value) else value
        except ValueError:
            return value
    return value


def resolve_notebook(name: str | os.PathLike[str], notebooks_dir: str | os.PathLike[str] | None = None) -> Path:
    """One notebook by path, or by number or name in the notebooks folder (``"04"``, ``"04_qlora_training"``)."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_file():
        return path
    books = numbered_notebooks(find_notebooks_dir(notebooks_dir), [str(name)])
    if len(books) != 1:
        raise FtlabError(f"{name} matches {len(books)} notebooks ({', '.join(b.name for b in books)}); name one")
    return books[0]


def declared_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """The parameters a notebook declares in its ``parameters`` cell (papermill's inspection)."""
    import logging

    import papermill

    log = logging.getLogger("papermill")
    level = log.level
    log.setLevel(logging.ERROR)  # papermill warns about comments it cannot parse for --help-notebook
    try:
        found = dict(papermill.inspect_notebook(str(path)))
    finally:
        log.setLevel(level)
    # papermill's line parser skips a parameter whose comment holds '=' or quotes; ast does not.
    for name, info in _parameters_cell_names(path).items():
        found.setdefault(name, info)
    return found


def _parameters_cell_names(path: Path) -> dict[str, dict[str, Any]]:
    import ast

    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            try:
                tree = ast.parse(src)
            except SyntaxError:
                return {}
            out = {}
            for node in tree.body:
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    out[node.target.id] = {"name": node.target.id, "inferred_type_name": ast.unparse(node.annotation),
                                           "default": ast.unparse(node.value) if node.value else "None", "help": ""}
                elif isinstance(node, ast.Assign):
                    for t in node.targets:
                        if isinstance(t, ast.Name):
                            out[t.id] = {"name": t.id, "inferred_type_name": "None", "default": ast.unparse(node.value),
                                         "help": ""}
            return out
    return {}


@dataclass
class NotebookResult:
    name: str
    status: str
    seconds: float
    figures: dict[str, Any] = field(default_factory=dict)
    output: str = ""
    error: dict[str, Any] | None = None
    plots: list[str] = field(default_factory=list)
    retried: bool = False  # the kernel stalled or died, and the notebook was re-run once in a fresh kernel
    retry_reason: str = ""  # why: "the kernel stopped answering: ..." or "the kernel died ..."
    first_attempt: str = ""  # the first attempt's executed notebook (NAME.stalled.ipynb)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "seconds": round(self.seconds, 2), "figures": self.figures}
        out["executed"] = self.output
        if self.error:
            out["error"] = self.error
        out["retried"] = self.retried
        if self.retried:
            out["retry_reason"] = self.retry_reason
            out["first_attempt"] = self.first_attempt
        if self.plots:
            out["plots"] = self.plots
        return out


def _failed_cell(executed: Path) -> dict[str, Any]:
    """Find the failing cell in an executed notebook: its index, first line and the error."""
    try:
        nb = json.loads(executed.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    code_index = 0
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        code_index += 1
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                src = "".join(cell.get("source", "")).strip().splitlines()
                return {
                    "cell": index,
                    "code_cell": code_index,
                    "first_line": src[0] if src else "",
                    "ename": out.get("ename", ""),
                    "evalue": out.get("evalue", ""),
                }
    return {}


def _extract_plots(executed: Path, plots_dir: Path) -> list[str]:
    nb = json.loads(executed.read_text(encoding="utf-8"))
    saved = []
    for i, cell in enumerate(nb.get("cells", [])):
        for j, out in enumerate(cell.get("outputs", []) or []):
            png = (out.get("data") or {}).get("image/png")
            if png:
                plots_dir.mkdir(parents=True, exist_ok=True)
                target = plots_dir / f"{executed.stem}_cell{i}_{j}.png"
                target.write_bytes(base64.b64decode(png if isinstance(png, str) else "".join(png)))
                saved.append(str(target.relative_to(plots_dir.parent)))
    return saved


@functools.cache
def kernel_manager_class():
    """The kernel manager ``execute_notebook`` uses: on POSIX, kernels talk over Unix sockets at a fresh absolute
    path instead of TCP ports. Two processes that start kernels at once (pytest-xdist workers, parallel
    ``ftlab run``s) can then never pick the same port and cross their messages: with TCP, one such race left a
    client waiting forever for a reply that went to the other process's kernel. Its clients re-check the shell
    socket after each send (``ftlab.kernelwatch.WakingShellChannel``), so a reply that came meanwhile is read."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, DottedObjectName, default

    class WakingKernelManager(AsyncKernelManager):
        # its clients re-check the shell socket after each send (ftlab.kernelwatch.WakingShellChannel: the CI hang)
        client_class = DottedObjectName("ftlab.kernelwatch.WakingKernelClient")

        @default("client_factory")
        def _client_factory_default(self) -> type:
            from ftlab.kernelwatch import WakingKernelClient

            return WakingKernelClient

    if os.name != "posix":  # zmq has no ipc transport on Windows
        return WakingKernelManager

    class IPCKernelManager(WakingKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _ip_default(self) -> str:  # jupyter_client's default, "kernel-ipc", is relative to the cwd: shared
            return os.path.join(tempfile.gettempdir(), f"ftlab-kernel-{uuid.uuid4().hex[:16]}")

    return IPCKernelManager


def execute_notebook(
    path: Path,
    output: Path,
    parameters: dict[str, Any] | None = None,
    *,
    progress: bool = True,
    cwd: Path | None = None,
    kernel_name: str | None = None,
    offline: bool = True,
    stall_seconds: float | None = None,
    log: Callable[[str], Any] | None = None,
) -> NotebookResult:
    """Run one notebook through papermill; never raises for a failure inside the notebook.

    A kernel that stops answering (a request with no ``busy``, output or reply in ``stall_seconds``, default
    ``FTLAB_STALL_SECONDS`` or 60; see ``ftlab.kernelwatch``) or that dies fails that attempt at once, and the
    notebook is re-run once in a fresh kernel: ``result.retried`` is then True, ``result.retry_reason`` says why,
    ``log`` (default: stderr) prints it and the first attempt's executed notebook is kept beside ``output`` as
    ``NAME.stalled.ipynb``. An error raised in a cell is never re-run. ``FTLAB_CELL_TIMEOUT`` (seconds, unset:
    none) limits how long one answering cell may run.
    """
    from ftlab.kernelwatch import stall_seconds_from_env

    reject_secrets(parameters or {})
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    stall = stall_seconds_from_env() if stall_seconds is None else stall_seconds
    cell_timeout = _cell_timeout_from_env()
    env_before = os.environ.get("FTLAB_OFFLINE")
    if offline:
        os.environ["FTLAB_OFFLINE"] = "1"
    started = time.perf_counter()
    retry_reason, first_output = "", ""
    try:
        status, error, stalled = _execute_once(path, output, parameters, progress, cwd, kernel_name, stall, cell_timeout)
        if stalled:
            retry_reason = stalled
            first = output.with_name(f"{output.stem}.stalled.ipynb")
            if output.exists():
                output.replace(first)
                first_output = str(first)
            say(f"      {path.name}: {stalled}; re-running it once in a fresh kernel"
                + (f" (first attempt kept: {first})" if first_output else ""))
            status, error, stalled = _execute_once(path, output, parameters, progress, cwd, kernel_name, stall,
                                                   cell_timeout)
            if stalled:
                say(f"      {path.name}: the re-run failed too: {stalled}")
            _note_retry(path, retry_reason, status)
    finally:
        if env_before is None:
            os.environ.pop("FTLAB_OFFLINE", None)
        else:
            os.environ["FTLAB_OFFLINE"] = env_before
    seconds = time.perf_counter() - started
    figs = read_figures(output) if output.exists() else {}
    return NotebookResult(path.name, status, seconds, figs, str(output), error, retried=bool(retry_reason),
                          retry_reason=retry_reason, first_attempt=first_output)


def _note_retry(path: Path, reason: str, status: str) -> None:
    """Append one line to ``FTLAB_RETRY_LOG`` when set (the test suite lists its re-runs at the end from it)."""
    target = os.environ.get("FTLAB_RETRY_LOG")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps({"notebook": str(path), "reason": reason, "rerun_status": status}) + "\n")


def _cell_timeout_from_env() -> int | None:
    """``FTLAB_CELL_TIMEOUT`` in whole seconds; unset, ``0`` or ``none``: no limit."""
    from ftlab.kernelwatch import seconds_from_env

    return int(seconds_from_env("FTLAB_CELL_TIMEOUT", 0, "means no limit")) or None


def _execute_once(path: Path, output: Path, parameters: dict[str, Any] | None, progress: bool, cwd: Path | None,
                  kernel_name: str | None, stall: float, cell_timeout: int | None
                  ) -> tuple[str, dict[str, Any] | None, str | None]:
    """One papermill run in a fresh kernel: ``(status, error, stall reason or None)``."""
    import papermill

    from ftlab.kernelwatch import ENGINE, stall_reason

    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=parameters or {},
            progress_bar=progress,
            cwd=str(cwd or path.parent),
            kernel_name=kernel_name or "python3",
            language="python",
            engine_name=ENGINE,  # papermill's nbclient engine plus the stall watch (ftlab.kernelwatch)
            stall_seconds=stall,
            execution_timeout=cell_timeout,
            kernel_manager_class=kernel_manager_class(),
        )
    except papermill.PapermillExecutionError as exc:
        error = _failed_cell(output) or {"ename": exc.ename, "evalue": exc.evalue}
        error.setdefault("code_cell", exc.exec_count)
        return "failed", error, None
    except Exception as exc:  # kernel stalled or died, notebook unreadable, ...
        return "failed", {"ename": type(exc).__name__, "evalue": str(exc)[:2000]}, stall_reason(exc)
    return "ok", None, None


def build_toy_first(params: dict[str, Any], declared: dict[Path, dict[str, Any]],
                    log: Callable[[str], Any] = print) -> dict[str, Any] | None:
    """Build the toy world before the notebooks, as a timed step of its own, when they will use it and it is not
    cached yet: the selected notebooks declare ``toy_seed``, ``model_id`` is the toy's (the default) and the
    cache holds no toy for that seed. Returns ``{"seconds", "seed", "path"}`` (or ``"error"``), else ``None``.

    Notebook 00 then reads the toy from the cache instead of building it inside its own time.
    Example: a fresh cache prints ``toy world built in 52.3 s`` and returns ``{"seconds": 52.3, ...}``.
    """
    from ftlab.toymodel import TOY_MODEL_ID, build_toy_model, toy_is_cached

    model_id, seed = params.get("model_id", TOY_MODEL_ID), params.get("toy_seed", 0)
    uses_toy = any("toy_seed" in d for d in declared.values())
    if not uses_toy or model_id != TOY_MODEL_ID or type(seed) is not int or seed < 0:
        return None  # another model, no toy notebook, or a bad seed that the notebooks themselves will name
    if toy_is_cached(seed):
        return None
    log(f"[toy] building the toy world (seed {seed}) before the notebooks")
    started = time.perf_counter()
    try:
        report = build_toy_model(seed=seed)
    except Exception as exc:  # the notebooks that need it fail with their own message
        log(f"      toy build FAILED: {type(exc).__name__}: {str(exc)[:300]}")
        return {"seconds": round(time.perf_counter() - started, 1), "seed": seed, "error": f"{type(exc).__name__}: {exc}"}
    seconds = round(time.perf_counter() - started, 1)
    log(f"      toy world built in {seconds:.1f} s -> {report.path}")
    return {"seconds": seconds, "seed": seed, "path": report.path}


def _write_summary(out_dir: Path, results: list[NotebookResult], params: dict[str, Any],
                   toy: dict[str, Any] | None = None) -> None:
    summary = {
        "notebooks": {r.name: r.to_json() for r in results},
        "parameters": {k: v for k, v in params.items()},
        "ok": all(r.status == "ok" for r in results),
    }
    if toy:
        summary["toy_build"] = toy
    total = sum(r.seconds for r in results) + (toy or {}).get("seconds", 0.0)
    summary["total_seconds"] = round(total, 1)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    lines = [f"# ftlab run: {out_dir.name}", ""]
    if toy:
        what = f"FAILED ({toy['error'][:200]})" if "error" in toy else "built"
        lines += [f"Toy world (seed {toy['seed']}) {what} in {toy['seconds']:.1f} s, before the notebooks.", ""]
    lines += ["| notebook | status | seconds |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.status}{' (re-run)' if r.retried else ''} | {r.seconds:.1f} |" for r in results]
    lines += [f"| total{' (toy build included)' if toy else ''} | | {total:.1f} |"]
    for r in results:
        lines += ["", f"## {r.name} ({r.status}, {r.seconds:.1f} s)", ""]
        if r.retried:
            lines += [f"**Re-run once in a fresh kernel**: {r.retry_reason}. First attempt: `{r.first_attempt}`", ""]
        if r.error:
            lines += [f"**Failed** in code cell {r.error.get('code_cell')}: `{r.error.get('ename')}: {r.error.get('evalue')}`", ""]
        if r.figures:
            lines += ["| figure | value |", "|---|---|"]
            for k, v in r.figures.items():
                text = json.dumps(v) if not isinstance(v, str) else v
                text = text if len(text) <= 200 else text[:200] + "…"
                lines.append(f"| {k} | {text.replace('|', '/')} |")
        for p in r.plots:
            lines += ["", f"![{Path(p).stem}]({p})"]
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_all(
    *,
    out: str | os.PathLike[str] | None = None,
    parameters: dict[str, Any] | None = None,
    only: list[str] | None = None,
    notebooks_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    offline: bool = True,
    log=print,
) -> tuple[Path, list[NotebookResult]]:
    """Execute the numbered notebooks in order. Returns the run folder and the results."""
    params = dict(parameters or {})
    reject_secrets(params)
    folder = find_notebooks_dir(notebooks_dir)
    books = numbered_notebooks(folder, only)
    out_dir = Path(out) if out else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    declared = {b: declared_parameters(b) for b in books}
    unknown = [k for k in params if not any(k in d for d in declared.values())]
    if unknown:
        raise ParameterError(
            f"no selected notebook declares parameter(s) {', '.join(unknown)}; "
            f"declared: {', '.join(sorted({k for d in declared.values() for k in d}))}"
        )
    toy = build_toy_first(params, declared, log)
    results: list[NotebookResult] = []
    for i, book in enumerate(books, 1):
        mine = {k: v for k, v in params.items() if k in declared[book]}
        extra = f" with {mine}" if mine else ""
        log(f"[{i}/{len(books)}] running {book.name}{extra}")
        result = execute_notebook(book, out_dir / book.name, mine, progress=progress, cwd=folder, offline=offline,
                                  log=log)
        result.plots = _extract_plots(Path(result.output), out_dir / "plots") if Path(result.output).exists() else []
        results.append(result)
        if result.status == "ok":
            again = " (after a re-run in a fresh kernel)" if result.retried else ""
            log(f"      ok in {result.seconds:.1f} s, {len(result.figures)} figures{again}")
        else:
            e = result.error or {}
            log(
                f"      FAILED in {book.name}, code cell {e.get('code_cell')} ({e.get('first_line', '')!s:.60}): "
                f"{e.get('ename')}: {str(e.get('evalue'))[:300]}\n      executed notebook: {result.output}"
            )
        _write_summary(out_dir, results, params, toy)
    return out_dir, results


def main_run(args) -> int:
    params = {name: parse_value(raw) for name, raw in args.parameter or []}
    out_dir, results = run_all(
        out=args.out,
        parameters=params,
        only=args.only,
        notebooks_dir=args.notebooks,
        progress=not args.quiet,
        offline=not args.allow_network,
    )
    failed = [r for r in results if r.status != "ok"]
    retried = [r.name for r in results if r.retried]
    again = f" {len(retried)} re-run once after the kernel stopped answering or died: {', '.join(retried)}." if retried else ""
    print(f"\n{len(results) - len(failed)}/{len(results)} notebooks ok.{again} Summary: {out_dir / 'summary.md'}",
          file=sys.stderr)
    return 1 if failed else 0
