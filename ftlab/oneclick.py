"""One-click: "Open in Colab" and "Launch Binder" links, and the Colab setup.

Every notebook starts with a Markdown cell of the two links (before the ``parameters`` cell, which stays
the first code cell) and has, right after the parameters cell, the Colab setup cell::

    # Colab only: clone ftlab and install its pinned dependencies (Colab has torch). Elsewhere: nothing.
    import subprocess
    import sys

    if "google.colab" in sys.modules:
        ...

Colab opens a notebook straight from GitHub, without ftlab, so that cell cannot import ftlab
first: it clones the repository and runs ``python -m ftlab.oneclick colab-setup`` from the clone,
which installs ftlab and its dependencies pinned by ``constraints.txt``, leaving Colab's own torch
(and its CUDA libraries) alone. Outside Colab the cell does nothing.

The links point at ``GITHUB_REPO`` on branch ``BRANCH``, unless ``git remote`` names a GitHub
repository (``repo_slug``). ``python -m ftlab.oneclick write`` adds or updates the link and
setup cells in every notebook; ``tests/test_oneclick.py`` checks them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["BRANCH", "COLAB_DIR", "COLAB_KEEP", "GITHUB_REPO", "ROOT", "START_NOTEBOOK",
           "add_oneclick_cells", "badges_markdown", "binder_url", "colab_cell", "colab_commands",
           "colab_setup", "colab_url", "in_colab", "main", "repo_slug", "write_notebooks"]


GITHUB_REPO = "ftlab/ftlab"  # owner/name on GitHub, used when `git remote` names no GitHub repository
BRANCH = "main"
START_NOTEBOOK = "notebooks/00_start_here.ipynb"
COLAB_DIR = "/content/ftlab"
BADGE_TAG, SETUP_TAG = "oneclick-badges", "colab-setup"
ROOT = Path(__file__).resolve().parent.parent
# Colab brings its own CUDA build of torch: these are never reinstalled there.
COLAB_KEEP = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-[\w-]+)$", re.I)

_GITHUB = re.compile(r"github\.com[:/](?P<slug>[\w.-]+/[\w.-]+?)(?:\.git)?/?$")


def repo_slug(root: str | os.PathLike[str] | None = None) -> str:
    """``owner/name`` of this repository on GitHub: from ``git remote`` (origin first), else ``GITHUB_REPO``.

    Example: a remote ``git@github.com:acme/ftlab.git`` gives ``"acme/ftlab"``.
    """
    try:
        out = subprocess.run(["git", "-C", str(root or ROOT), "remote", "-v"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    remotes = sorted((line.split() for line in out.splitlines() if len(line.split()) >= 2),
                     key=lambda parts: parts[0] != "origin")
    for parts in remotes:
        m = _GITHUB.search(parts[1])
        if m:
            return m["slug"]
    return GITHUB_REPO


def colab_url(path: str, slug: str | None = None, branch: str = BRANCH) -> str:
    """Colab's URL for a notebook of the repository (``path`` relative to the repository root)."""
    return f"https://colab.research.google.com/github/{slug or repo_slug()}/blob/{branch}/{quote(path)}"


def binder_url(path: str = START_NOTEBOOK, slug: str | None = None, branch: str = BRANCH) -> str:
    """mybinder.org's URL that builds the repository (``binder/``) and opens ``path`` in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{slug or repo_slug()}/{branch}?urlpath={quote('lab/tree/' + path, safe='')}"


def badges_markdown(path: str, slug: str | None = None, branch: str = BRANCH, *, images: bool = False) -> str:
    """The Markdown of the two links for one notebook.

    Plain text links by default: a notebook opened offline must not fetch anything (the browser test
    checks it), and badge images are fetched from the two sites. ``images=True`` gives the usual
    badge images, for the README.
    """
    slug = slug or repo_slug()
    colab, binder = colab_url(path, slug, branch), binder_url(path, slug, branch)
    if images:
        return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
                f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({binder})")
    return f"**[▶ Open in Colab]({colab})** · **[▶ Launch Binder]({binder})**"


def colab_cell(slug: str | None = None, branch: str = BRANCH) -> str:
    """The setup cell's source: a no-op outside Colab; in Colab, clone and ``python -m ftlab.oneclick colab-setup``."""
    url = f"https://github.com/{slug or repo_slug()}"
    return (
        "# Colab only: clone ftlab and install its pinned dependencies (Colab has torch). Anywhere else: nothing.\n"
        "import subprocess\nimport sys\n\n"
        'if "google.colab" in sys.modules:\n'
        f'    subprocess.run("test -d {COLAB_DIR} || git clone -q --depth 1 -b {branch} {url} {COLAB_DIR}", shell=True, check=True)\n'
        f'    subprocess.run([sys.executable, "-m", "ftlab.oneclick", "colab-setup"], cwd="{COLAB_DIR}", check=True)\n'
        f'    sys.path.insert(0, "{COLAB_DIR}")'
    )


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def _requirement_name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", req.strip(), maxsplit=1)[0]


def colab_commands(repo_dir: str | os.PathLike[str] = COLAB_DIR) -> tuple[list[list[str]], str]:
    """The pip commands that set Colab up from a clone, and the filtered constraints they use.

    ftlab itself goes in with ``--no-deps`` (editable, so that subprocesses find it too); its
    dependencies, except torch and its CUDA libraries, go in pinned by ``constraints.txt``.
    """
    import tomllib

    repo = Path(repo_dir)
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    deps = [d for d in project["dependencies"] if not COLAB_KEEP.match(_requirement_name(d))]
    constraints = [line for line in (repo / "constraints.txt").read_text(encoding="utf-8").splitlines()
                   if line.strip() and not line.startswith("#") and not COLAB_KEEP.match(_requirement_name(line))]
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    return [[*pip, "--no-deps", "-e", str(repo)], [*pip, "-c", "{constraints}", *deps]], "\n".join(constraints) + "\n"


def colab_setup(repo_dir: str | os.PathLike[str] = COLAB_DIR, *, force: bool = False, dry_run: bool = False) -> list[list[str]]:
    """Install ftlab and its pinned dependencies into Colab's Python; a no-op (``[]``) outside Colab.

    ``force`` runs it outside a Colab kernel (the setup cell calls it in a subprocess, which has
    no ``google.colab`` module); ``dry_run`` returns the commands without running them.
    """
    if not (force or in_colab()):
        return []
    import tempfile

    commands, constraints = colab_commands(repo_dir)
    fd, path = tempfile.mkstemp(prefix="ftlab-colab-constraints-", suffix=".txt")
    with os.fdopen(fd, "w") as fh:
        fh.write(constraints)
    commands = [[path if part == "{constraints}" else part for part in cmd] for cmd in commands]
    if not dry_run:
        for cmd in commands:
            subprocess.run(cmd, check=True)
    return commands


# ------------------------------------------------------------------------------------------------
# Writing the cells into the notebooks
# ------------------------------------------------------------------------------------------------


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def add_oneclick_cells(nb: dict[str, Any], rel_path: str, slug: str | None = None) -> bool:
    """Put the badge cell first and the Colab setup cell right after the parameters cell; True if changed."""
    slug = slug or repo_slug()
    badges = {"cell_type": "markdown", "id": "oneclick", "metadata": {"tags": [BADGE_TAG]},
              "source": badges_markdown(rel_path, slug)}
    setup = {"cell_type": "code", "execution_count": None, "id": "colab-setup", "metadata": {"tags": [SETUP_TAG]},
             "outputs": [], "source": colab_cell(slug)}
    def shape(cells: list[dict[str, Any]]) -> list[tuple[str, list[str], str]]:
        return [(c["cell_type"], c.get("metadata", {}).get("tags", []), _source(c)) for c in cells]

    before = shape(nb["cells"])
    cells = [c for c in nb["cells"] if not {BADGE_TAG, SETUP_TAG} & set(c.get("metadata", {}).get("tags", []))]
    params = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), None)
    if params is None or "parameters" not in cells[params].get("metadata", {}).get("tags", []):
        raise ValueError(f"{rel_path}: the first code cell must be the tagged parameters cell")
    cells.insert(params + 1, setup)
    cells.insert(0, badges)
    nb["cells"] = cells
    return shape(cells) != before


def write_notebooks(root: str | os.PathLike[str] = ROOT, slug: str | None = None) -> list[Path]:
    """Add or update the one-click cells in every ``notebooks/NN_*.ipynb``; returns the files changed."""
    import nbformat

    root = Path(root)
    changed = []
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        if add_oneclick_cells(nb, path.relative_to(root).as_posix(), slug):
            nbformat.write(nbformat.from_dict(nb), str(path))
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m ftlab.oneclick write`` | ``colab-setup [--dry-run]`` | ``urls``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["write"]:
        for p in write_notebooks():
            print(f"updated {p}")
        return 0
    if args[:1] == ["colab-setup"]:
        for cmd in colab_setup(Path.cwd(), force=True, dry_run="--dry-run" in args):
            print(" ".join(cmd))
        return 0
    if args[:1] == ["urls"]:
        print(f"repository: {repo_slug()}\nColab (start): {colab_url(START_NOTEBOOK)}\nBinder (start): {binder_url()}")
        return 0
    print("usage: python -m ftlab.oneclick write | colab-setup [--dry-run] | urls", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
