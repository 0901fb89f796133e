"""One-click: badges point at this repository's notebooks, the Colab setup cell is a no-op outside
Colab, and the Binder environment's pip requirements resolve in a fresh venv."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from ftlab import oneclick
from tests.helpers import BOOKS, ROOT

LINK = re.compile(r"(?<!!)\[[^\[\]]*\]\((https://[^)\s]+)\)|\)\]\((https://[^)\s]+)\)")  # [text](url), [![img](src)](url)


def _links(markdown: str) -> list[str]:
    return [a or b for a, b in LINK.findall(markdown)]


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _target(url: str, slug: str) -> str:
    """The repository path a Colab or Binder link opens (and check it is this repository's)."""
    u = urlparse(url)
    if u.netloc == "colab.research.google.com":
        prefix = f"/github/{slug}/blob/{oneclick.BRANCH}/"
        assert u.path.startswith(prefix), f"{url}: not {slug} on {oneclick.BRANCH}"
        return unquote(u.path[len(prefix):])
    if u.netloc == "mybinder.org":
        assert u.path == f"/v2/gh/{slug}/{oneclick.BRANCH}", f"{url}: not {slug} on {oneclick.BRANCH}"
        query = dict(p.split("=", 1) for p in u.query.split("&"))
        return unquote(query["urlpath"]).removeprefix("lab/tree/")
    raise AssertionError(f"unexpected link {url}")


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_badges_first_and_point_at_this_notebook_in_this_repo(path):
    slug = oneclick.repo_slug()
    cells = _cells(path)
    first = cells[0]
    assert first["cell_type"] == "markdown" and oneclick.BADGE_TAG in first["metadata"].get("tags", []), \
        f"{path.name}: run `python -m ftlab.oneclick write` to add the badges"
    links = _links(_src(first))
    assert "![" not in _src(first), "no images: an offline notebook must not fetch badge images"
    hosts = sorted(urlparse(u).netloc for u in links)
    assert hosts == ["colab.research.google.com", "mybinder.org"]
    for url in links:
        rel = _target(url, slug)
        assert rel == path.relative_to(ROOT).as_posix() and (ROOT / rel).is_file()
    assert "Open in Colab" in _src(first) and "Launch Binder" in _src(first)


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_colab_setup_cell_right_after_the_parameters_cell(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert oneclick.SETUP_TAG in code[1]["metadata"].get("tags", [])
    assert _src(code[1]) == oneclick.colab_cell(), f"{path.name}: run `python -m ftlab.oneclick write`"


def test_write_is_idempotent(tmp_path):
    nb = json.loads(BOOKS[0].read_text())
    assert oneclick.add_oneclick_cells(nb, BOOKS[0].relative_to(ROOT).as_posix()) is False
    assert [c["cell_type"] for c in nb["cells"]] == [c["cell_type"] for c in _cells(BOOKS[0])]


def test_readme_badges_open_the_start_notebook():
    readme = (ROOT / "README.md").read_text()
    slug = oneclick.repo_slug()
    urls = [u for u in _links(readme) if "colab.research.google.com/github" in u or "mybinder.org/v2" in u]
    assert len(urls) >= 2
    assert {_target(u, slug) for u in urls} == {oneclick.START_NOTEBOOK}


def test_repo_slug_from_git_remote(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert oneclick.repo_slug(tmp_path) == oneclick.GITHUB_REPO  # no remote: the constant
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "upstream", "https://github.com/other/thing"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@github.com:acme/ft-lab.git"], check=True)
    assert oneclick.repo_slug(tmp_path) == "acme/ft-lab"
    assert oneclick.colab_url("notebooks/04_x.ipynb", "acme/ft-lab") == \
        "https://colab.research.google.com/github/acme/ft-lab/blob/main/notebooks/04_x.ipynb"


# ------------------------------------------------------------------------------------------------
# Colab
# ------------------------------------------------------------------------------------------------


def test_setup_cell_is_a_no_op_outside_colab(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError(f"the setup cell ran a command outside Colab: {a}")

    cell = oneclick.colab_cell()
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    path_before = list(sys.path)
    exec(compile(cell, "setup-cell", "exec"), {})
    assert sys.path == path_before
    assert oneclick.colab_setup() == []  # the function is a no-op too


def test_setup_cell_in_colab_clones_and_runs_colab_setup(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(oneclick.colab_cell("acme/ftlab"), "setup-cell", "exec"), {})
    (clone, kw1), (setup, kw2) = calls
    assert "git clone" in clone[0] and "https://github.com/acme/ftlab" in clone[0] and kw1["check"]
    assert setup[0][1:] == ["-m", "ftlab.oneclick", "colab-setup"] and kw2["cwd"] == oneclick.COLAB_DIR
    assert sys.path[0] == oneclick.COLAB_DIR


def test_colab_setup_installs_pinned_dependencies_but_not_torch():
    commands = oneclick.colab_setup(ROOT, force=True, dry_run=True)
    (install_ftlab, install_deps) = commands
    assert install_ftlab[-3:] == ["--no-deps", "-e", str(ROOT)]
    cflag = install_deps.index("-c")
    constraints = Path(install_deps[cflag + 1]).read_text()
    deps = install_deps[cflag + 2:]
    assert not any(re.match(r"torch\b", d) for d in deps) and any(d.startswith("transformers") for d in deps)
    assert re.search(r"^transformers==", constraints, re.M) and not re.search(r"^(torch|triton|nvidia-)", constraints, re.M)
    os.unlink(install_deps[cflag + 1])
    out = subprocess.run([sys.executable, "-m", "ftlab.oneclick", "colab-setup", "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout
    assert "--no-deps -e" in out and " torch" not in out


# ------------------------------------------------------------------------------------------------
# Binder
# ------------------------------------------------------------------------------------------------


def _postbuild_pip_lines() -> list[list[str]]:
    lines = (ROOT / "binder" / "postBuild").read_text().splitlines()
    return [line.split() for line in lines if line.startswith("python -m pip install")]


def test_postbuild_fails_loudly_and_installs_from_constraints():
    text = (ROOT / "binder" / "postBuild").read_text()
    assert text.splitlines()[0] == "set -e", "repo2docker hides failures of a postBuild without set -e"
    pip = _postbuild_pip_lines()
    assert pip and all("-c" in p and p[p.index("-c") + 1] == "constraints.txt" for p in pip)
    assert any('".[lab]"' in p or ".[lab]" in p for p in (" ".join(x) for x in pip))
    env = (ROOT / "binder" / "environment.yml").read_text()
    assert re.search(r"python[>=]+3\.11", env)


@pytest.mark.slow
def test_binder_requirements_resolve_in_a_fresh_venv(tmp_path):
    """Resolve (pip --dry-run) exactly what postBuild installs, in a fresh venv, and compare with the pins.

    The PyTorch CPU index that postBuild adds for torch is left out: the local indexes hold the same
    pinned torch. Skips when no package index can be reached.
    """
    if sys.version_info < (3, 11, 5):
        pytest.skip("constraints.txt pins packages that need Python >= 3.11.5 (binder/environment.yml asks for it)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    args: list[str] = []
    for line in _postbuild_pip_lines():
        rest = line[line.index("install") + 1:]
        while "--extra-index-url" in rest:
            i = rest.index("--extra-index-url")
            del rest[i:i + 2]
        args += [a.strip('"') for a in rest if a not in ("-q", "-c", "constraints.txt")]
    report = tmp_path / "report.json"
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--ignore-installed",
                           "--report", str(report), "-c", "constraints.txt", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=800)
    if proc.returncode and re.search(r"NewConnectionError|Temporary failure in name resolution|Network is unreachable",
                                     proc.stderr):
        pytest.skip("no package index reachable")
    assert proc.returncode == 0, proc.stderr[-3000:]
    installed = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
                 for i in json.loads(report.read_text())["install"]}
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    pins = {k.lower().replace("_", "-"): v.strip() for k, v in pins.items()}
    for name in ("ftlab", "torch", "transformers", "trl", "peft", "jupyterlab", "papermill"):
        assert name in installed, f"{name} missing from the Binder environment"
    wrong = {n: (v, pins[n]) for n, v in installed.items() if n in pins and v.split("+")[0] != pins[n].split("+")[0]}
    assert not wrong, f"not the pinned versions: {wrong}"
