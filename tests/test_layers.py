"""The data flows one way: no ftlab module imports from a later pipeline stage."""

from __future__ import annotations

import ast
from pathlib import Path

import ftlab

PKG = Path(ftlab.__file__).parent

LAYERS = {
    "errors": 0, "core": 0, "figures": 0, "params": 0, "offline": 0, "generation": 0, "runcard": 0,
    "hub": 0,
    "data": 1, "toymodel": 1, "probes": 1,
    "tokens": 2, "validate": 2, "validate_dpo": 2, "cost": 2, "paths": 2, "userdata": 2,
    "train": 3, "memory": 3, "preference": 3,
    "sandbox": 4,
    "diagnose": 5,
    "merge": 6,
    "evaluate": 7,
    "failures": 8, "cloud": 8, "scale": 8, "exercises": 8, "check": 8, "sweep": 9, "oneclick": 9,
    "runner": 9, "cli": 9, "commands": 9, "__init__": 0, "__main__": 9,
}


def _module_of(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    return rel.parts[0]


def test_every_module_has_a_layer():
    missing = {_module_of(p) for p in PKG.rglob("*.py")} - set(LAYERS)
    assert not missing, f"add these modules to LAYERS (and to ftlab/__init__'s table): {missing}"


def test_no_module_reaches_back_up():
    bad = []
    for path in PKG.rglob("*.py"):
        me = _module_of(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ftlab."):
                names = [node.module.split(".")[1]]
            elif isinstance(node, ast.ImportFrom) and node.module == "ftlab":
                names = [a.name for a in node.names if a.name in LAYERS]
            elif isinstance(node, ast.Import):
                names = [a.name.split(".")[1] for a in node.names if a.name.startswith("ftlab.")]
            for other in names:
                if other in LAYERS and me != other and LAYERS[other] > LAYERS[me]:
                    bad.append(f"{path.relative_to(PKG)} imports ftlab.{other} (layer {LAYERS[other]} > {LAYERS[me]})")
    assert not bad, "\n".join(bad)
