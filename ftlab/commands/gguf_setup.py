"""ftlab gguf-setup: fetch llama.cpp's GGUF converter (and optionally build the llama.cpp bindings).

    ftlab gguf-setup                  # extract convert_hf_to_gguf.py from llama-cpp-python's source package
    ftlab gguf-setup --sdist FILE     # from a source package already downloaded
    ftlab gguf-setup --build          # also pip install llama-cpp-python (compiles llama.cpp: minutes)

Notebook 06 converts with the extracted converter (checked here to start offline), then loads the GGUF
back with llama.cpp's server (xllamacpp, a default dependency; llama-cpp-python is an optional second route).
"""

from __future__ import annotations

import json
import subprocess
import sys

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("gguf-setup", help="fetch llama.cpp's convert_hf_to_gguf.py (and optionally build llama-cpp-python)")
    p.add_argument("--sdist", help="a llama_cpp_python-*.tar.gz already downloaded (default: pip downloads it)")
    p.add_argument("--version", help="llama-cpp-python version (default: the installed one, else ftlab's pinned one)")
    p.add_argument("--build", action="store_true",
                   help="also pip install llama-cpp-python from source (compiles llama.cpp; up to an hour on 2 busy CPU cores)")
    p.add_argument("--json", action="store_true", help="print the GGUF status as JSON")

    def run(args) -> int:
        from ftlab.errors import FtlabError
        from ftlab.merge import (
            LLAMA_CPP_PYTHON_VERSION,
            check_converter,
            fetch_llama_cpp_converter,
            gguf_status,
        )

        folder = fetch_llama_cpp_converter(args.sdist, args.version)
        check_converter(folder)  # it must start offline: notebooks run without the network
        if args.build:
            spec = args.sdist or f"llama-cpp-python=={args.version or LLAMA_CPP_PYTHON_VERSION}"
            proc = subprocess.run([sys.executable, "-m", "pip", "install", spec])
            if proc.returncode:
                raise FtlabError(f"pip install {spec} failed (exit {proc.returncode}); see pip's output above")
        status = gguf_status()
        if args.json:
            print(json.dumps(status))
        else:
            print(f"converter: {folder}")
            print(f"llama.cpp server (xllamacpp): {status['server'] or 'not installed'}")
            print(f"llama-cpp-python bindings (optional): {status['bindings'] or 'not installed'}")
            if status["reason"]:
                print(f"not ready: {status['reason']}")
        return 0

    p.set_defaults(func=run)
