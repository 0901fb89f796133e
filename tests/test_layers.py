"""The data flows one way: no ftlab module imports from a later pipeline stage."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import ftlab

PKG = Path(ftlab.__file__).parent

LAYERS = {
    "errors": 0, "core": 0, "figures": 0, "params": 0, "offline": 0, "generation": 0, "runcard": 0,
    "hub": 0, "show": 0, "sidebyside": 0,
    "data": 1, "toymodel": 1, "probes": 1,
    "tokens": 2, "validate": 2, "validate_dpo": 2, "cost": 2, "paths": 2, "userdata": 2,
    "train": 3, "memory": 3, "preference": 3,
    "sandbox": 4,
    "diagnose": 5,
    "merge": 6,
    "evaluate": 7, "gates": 7,
    "failures": 8, "cloud": 8, "scale": 8, "exercises": 8, "check": 8, "sweep": 9, "oneclick": 9,
    "runner": 9, "kernelwatch": 9, "cli": 9, "commands": 9, "__init__": 0, "__main__": 9,
}


# Inside a package the rule is stricter: a module imports only from a lower layer, never its own, so an
# import cycle (even one dodged inside a function) fails. Every import counts, at any depth of the file.
INNER = {
    "sandbox": {"api": 0, "store": 0, "models": 0, "gate": 0, "training": 1, "inference": 1,
                "server": 2, "jobs": 2, "__init__": 3, "workflow": 4},
    "cloud": {"common": 0, "costs": 0, "bedrock": 1, "vertex": 1, "together": 1, "azure": 1, "formats": 2,
              "__init__": 3},
    "memory": {"estimate": 0, "results": 0, "measure": 1, "recommend": 1, "__init__": 2},
    "cost": {"catalog": 0, "dates": 1, "counting": 1, "breakeven": 1, "training": 2, "tables": 3, "explorer": 4,
             "__init__": 5},
    "validate": {"rules": 0, "counting": 0, "checks": 1, "personal": 2, "files": 3, "__init__": 4},
    "diagnose": {"rules": 0, "read": 0, "runs": 0, "measure": 1, "verdict": 2, "fit": 3, "plot": 3, "__init__": 4},
    "train": {"config": 0, "model": 0, "loss": 0, "callbacks": 0, "sft": 1, "cache": 2, "__init__": 3},
    "merge": {"adapter": 0, "parity": 0, "serve": 0, "gguf": 0, "runtime": 1, "__init__": 2},
    "preference": {"pairs": 0, "measure": 0, "reward": 0, "formats": 1, "training": 2, "__init__": 3},
    "scale": {"launch": 0, "per_gpu": 0, "runspec": 1, "__init__": 2},
    "evaluate": {"sets": 0, "scoring": 1, "verdict": 2, "gate": 3, "plot": 3, "__init__": 4},
    "data": {"general": 0, "safety": 1, "support": 2, "catalog": 3, "files": 3, "__init__": 4},
    "failures": {"detect": 0, "runs": 1, "measure": 2, "verdict": 3, "plot": 4, "__init__": 5},
}


def _module_of(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    return rel.parts[0]


def test_every_module_has_a_layer():
    missing = {_module_of(p) for p in PKG.rglob("*.py")} - set(LAYERS)
    assert not missing, f"add these modules to LAYERS (and to ftlab/__init__'s table): {missing}"


def _ftlab_imports(path: Path) -> list[str]:
    """The ``ftlab`` modules (top level: ``train`` for ``ftlab.train.x``) that ``path`` imports, at any depth."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ftlab."):
            names.append(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "ftlab":
            names += [a.name for a in node.names if a.name in LAYERS]
        elif isinstance(node, ast.Import):
            names += [a.name.split(".")[1] for a in node.names if a.name.startswith("ftlab.")]
    return names


def test_no_module_reaches_back_up():
    bad = []
    for path in PKG.rglob("*.py"):
        me = _module_of(path)
        for other in _ftlab_imports(path):
            if other in LAYERS and me != other and LAYERS[other] > LAYERS[me]:
                bad.append(f"{path.relative_to(PKG)} imports ftlab.{other} (layer {LAYERS[other]} > {LAYERS[me]})")
    assert not bad, "\n".join(bad)


def test_the_diagnoser_proper_does_not_train():
    """Only ``diagnose/runs.py`` (the toy trainings that cause each pattern) imports ``train`` or ``toymodel``:
    reading, measuring and deciding a curve need neither (issue 24), and importing the package loads neither."""
    import subprocess

    bad = [f"diagnose/{p.name} imports ftlab.{o}" for p in (PKG / "diagnose").glob("*.py") if p.stem != "runs"
           for o in _ftlab_imports(p) if o in ("train", "toymodel")]
    assert not bad, "\n".join(bad)
    assert {"train", "toymodel"} <= set(_ftlab_imports(PKG / "diagnose" / "runs.py"))  # the check can fail
    code = "import sys, ftlab.diagnose; print(sorted({'ftlab.train', 'ftlab.toymodel', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _inner_imports(package: str, path: Path) -> list[str]:
    """The modules of ``ftlab.<package>`` that ``path`` imports (``__init__`` for the package itself)."""
    inner = INNER[package]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == f"ftlab.{package}":
            found += [a.name if a.name in inner else "__init__" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(f"ftlab.{package}."):
            found.append(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found += [a.name.split(".")[2] if a.name.count(".") >= 2 else "__init__" for a in node.names
                      if a.name == f"ftlab.{package}" or a.name.startswith(f"ftlab.{package}.")]
    return found


def _inner_problems(package: str) -> list[str]:
    inner, bad = INNER[package], []
    files = {p.stem: p for p in (PKG / package).glob("*.py")}
    missing = set(files) - set(inner)
    if missing:
        bad.append(f"add these modules to INNER[{package!r}]: {sorted(missing)}")
    for me, path in files.items():
        for other in _inner_imports(package, path):
            if other != me and inner.get(other, 99) >= inner.get(me, -1):
                bad.append(f"{package}/{me}.py imports {package}.{other} (layer {inner.get(other)} >= {inner.get(me)})")
    return bad


def test_no_module_inside_a_package_reaches_sideways_or_up():
    bad = [problem for package in INNER for problem in _inner_problems(package)]
    assert not bad, "\n".join(bad)


def test_the_inner_check_fails_on_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: a copy of the sandbox with jobs <-> server (the old cycle) does."""
    import shutil

    shutil.copytree(PKG / "sandbox", tmp_path / "sandbox")
    server = tmp_path / "sandbox" / "server.py"
    server.write_text(server.read_text() + "\n\ndef _late():\n    from ftlab.sandbox.jobs import Runner\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path)
    bad = _inner_problems("sandbox")
    assert bad == ["sandbox/server.py imports sandbox.jobs (layer 2 >= 2)"]
