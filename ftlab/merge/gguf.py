"""Exporting to GGUF with llama.cpp's own converter (from llama-cpp-python's source package), and what the
GGUF step can do here (``gguf_status``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftlab.core import cache_dir
from ftlab.errors import FtlabError

__all__ = [
    "LLAMA_CPP_PYTHON_VERSION",
    "GGUFExport",
    "check_converter",
    "convert_to_gguf",
    "fetch_llama_cpp_converter",
    "gguf_status",
    "llama_cpp_bindings",
    "llama_cpp_converter_dir",
    "llama_cpp_pre_tokenizer",
    "xllamacpp_version",
]


# llama-cpp-python's source package vendors llama.cpp, including convert_hf_to_gguf.py.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"


# ---------------------------------------------------------------------------------------------
# GGUF for llama.cpp, with llama.cpp's own converter
# ---------------------------------------------------------------------------------------------
_CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion", "gguf-py", "LICENSE")


def _installed_llama_cpp_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def llama_cpp_converter_dir(version: str | None = None) -> Path | None:
    """The folder holding llama.cpp's ``convert_hf_to_gguf.py``, or ``None`` when there is none yet.

    ``$FTLAB_LLAMA_CPP`` (a llama.cpp checkout) wins; otherwise the copy that ``fetch_llama_cpp_converter``
    extracted from llama-cpp-python's source package (the installed version, else the pinned one).
    """
    env = os.environ.get("FTLAB_LLAMA_CPP")
    if env:
        return Path(env) if (Path(env) / "convert_hf_to_gguf.py").exists() else None
    version = version or _installed_llama_cpp_version() or LLAMA_CPP_PYTHON_VERSION
    folder = cache_dir("llama.cpp") / f"llama-cpp-python-{version}"
    return folder if (folder / "convert_hf_to_gguf.py").exists() else None


def fetch_llama_cpp_converter(sdist: str | os.PathLike[str] | None = None, version: str | None = None) -> Path:
    """Extract llama.cpp's converter (``convert_hf_to_gguf.py``, ``conversion/``, ``gguf-py/``) from llama-cpp-python's sdist.

    Without ``sdist``, pip downloads the source package of ``version`` (default: the installed
    llama-cpp-python, else the pinned one) from the package index: run it once at setup time
    (``ftlab gguf-setup``), since notebooks run offline. Returns the converter folder.
    """
    version = version or _installed_llama_cpp_version() or LLAMA_CPP_PYTHON_VERSION
    target = cache_dir("llama.cpp") / f"llama-cpp-python-{version}"
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    if sdist is not None and not Path(sdist).is_file():
        raise FtlabError(f"--sdist {sdist}: no such file (give a llama_cpp_python-*.tar.gz, or omit it to download one)")
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   f"llama-cpp-python=={version}", "-d", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            found = sorted(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
            if proc.returncode or not found:
                last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise FtlabError(f"pip could not download llama-cpp-python=={version}'s source package: {last[0]}")
            sdist = found[0]
        prefix_marker = "/vendor/llama.cpp/"
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(sdist) as tar:
            members = []
            for m in tar.getmembers():
                if prefix_marker not in m.name:
                    continue
                rel = m.name.split(prefix_marker, 1)[1]
                if rel.split("/", 1)[0] in _CONVERTER_PARTS and (m.isfile() or m.isdir()):
                    m.name = rel
                    members.append(m)
            if not any(m.name == "convert_hf_to_gguf.py" for m in members):
                raise FtlabError(f"{sdist}: no vendor/llama.cpp/convert_hf_to_gguf.py in this source package")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse links and paths outside the folder
                tar.extractall(partial, members=members, filter="data")
            else:  # pragma: no cover
                tar.extractall(partial, members=members)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


# The pre-tokenizer of StarCoder 2 and SmolLM (and of the toy model): single digits, then GPT-2's byte-level regex.
_STARCODER_PRE = {"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": True},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}


def llama_cpp_pre_tokenizer(model_dir: str | os.PathLike[str]) -> str | None:
    """The llama.cpp pre-tokenizer that splits text exactly as this tokenizer's ``tokenizer.json`` declares, if one is known.

    llama.cpp's converter recognizes a tokenizer by hashing the token ids of a test string. A
    tokenizer trained from scratch (the toy's) has its own vocabulary, so its hash is in no table,
    although its *pre-tokenizer* is StarCoder 2's and SmolLM's: split digits one by one, then GPT-2's
    byte-level regex. llama.cpp implements that split as ``"smollm"`` (no space clean-up on decoding,
    like this tokenizer) and ``"starcoder"`` (with clean-up). Returns ``None`` for any other declaration.
    """
    path = Path(model_dir) / "tokenizer.json"
    if not path.exists():
        return None
    tok = json.loads(path.read_text(encoding="utf-8"))
    if tok.get("normalizer") is not None or tok.get("model", {}).get("type") != "BPE":
        return None
    if tok.get("pre_tokenizer") != _STARCODER_PRE or (tok.get("decoder") or {}).get("type") != "ByteLevel":
        return None
    cfg_path = Path(model_dir) / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.exists() else {}
    return "starcoder" if cfg.get("clean_up_tokenization_spaces") else "smollm"


# Runs llama.cpp's convert_hf_to_gguf.py unchanged. When the converter's hash table does not know the
# tokenizer (NotImplementedError), it answers with the pre-tokenizer that ftlab matched from tokenizer.json,
# which is what adding the model to convert_hf_to_gguf_update.py would do upstream.
_DRIVER = r"""
import runpy, sys
conv, pre = sys.argv[1], sys.argv[2]
sys.argv = [conv + "/convert_hf_to_gguf.py"] + sys.argv[3:]
sys.path[:0] = [conv, conv + "/gguf-py"]
if pre:
    from conversion import base
    original = base.TextModel.get_vocab_base_pre
    def get_vocab_base_pre(self, tokenizer):
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            print(f"ftlab: tokenizer hash not in llama.cpp's table; its tokenizer.json declares the {pre!r} "
                  "pre-tokenizer, so tokenizer.ggml.pre = " + repr(pre), file=sys.stderr)
            return pre
    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def check_converter(folder: str | os.PathLike[str]) -> None:
    """Run the extracted converter's ``--help`` offline (no network, no hub): it must import and start.

    ``ftlab gguf-setup`` calls it, so a broken or incomplete extraction fails at setup time, not in notebook 06.
    """
    env = {**{k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"},
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "FTLAB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(folder), "", "--help"], capture_output=True, text=True,
                          env=env, timeout=300)
    if proc.returncode or "usage" not in proc.stdout.lower():
        last = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-1:] or ["no output"]
        raise FtlabError(f"llama.cpp's converter in {folder} does not start offline: {last[0]} "
                         "(delete the folder and run `ftlab gguf-setup` again)")


@dataclass
class GGUFExport:
    """A GGUF file written by llama.cpp's converter."""

    path: str
    outtype: str
    size_mb: float
    pre_tokenizer: str | None  # the pre-tokenizer matched from tokenizer.json when the hash was unknown
    pre_tokenizer_from_declaration: bool  # True when the converter's hash table did not know the tokenizer
    converter: str
    seconds: float
    log_tail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def convert_to_gguf(model_dir: str | os.PathLike[str], out_file: str | os.PathLike[str] | None = None, *,
                    outtype: str = "f32", converter: str | os.PathLike[str] | None = None) -> GGUFExport:
    """Convert a merged Hugging Face folder to GGUF with llama.cpp's ``convert_hf_to_gguf.py``.

    ``outtype``: ``f32``, ``f16``, ``bf16`` or ``q8_0`` (the converter's own choices; k-quants such as
    Q4_K_M come from llama.cpp's ``llama-quantize`` tool afterwards). Example::

        convert_to_gguf("runs/06/merged", "runs/06/merged-f32.gguf").size_mb
    """
    model_dir = Path(model_dir)
    conv = Path(converter) if converter else llama_cpp_converter_dir()
    if conv is None or not (conv / "convert_hf_to_gguf.py").exists():
        raise FtlabError("llama.cpp's converter is not here: run `ftlab gguf-setup` once (it extracts "
                         "convert_hf_to_gguf.py from llama-cpp-python's source package), or set FTLAB_LLAMA_CPP "
                         "to a llama.cpp checkout")
    out = Path(out_file) if out_file else model_dir.with_suffix(f".{outtype}.gguf")
    out.parent.mkdir(parents=True, exist_ok=True)
    pre = llama_cpp_pre_tokenizer(model_dir)
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(conv), pre or "", str(model_dir), "--outfile", str(out),
                           "--outtype", outtype], capture_output=True, text=True, env=env)
    log = (proc.stdout + proc.stderr).strip()
    if proc.returncode or not out.exists():
        last = [ln for ln in log.splitlines() if ln.strip()][-1:] or ["no output"]
        raise FtlabError(f"llama.cpp's converter failed on {model_dir}: {last[0]}")
    return GGUFExport(path=str(out), outtype=outtype, size_mb=round(out.stat().st_size / 2**20, 2), pre_tokenizer=pre,
                      pre_tokenizer_from_declaration="ftlab: tokenizer hash not in" in log, converter=str(conv),
                      seconds=round(time.perf_counter() - started, 2), log_tail="\n".join(log.splitlines()[-8:]))


def llama_cpp_bindings() -> str | None:
    """The installed llama-cpp-python version when its compiled library loads, else ``None``."""
    try:
        import llama_cpp
    except Exception:  # not installed, or the shared library failed to load
        return None
    return getattr(llama_cpp, "__version__", None) or _installed_llama_cpp_version()


def xllamacpp_version() -> str | None:
    """The installed ``xllamacpp`` (llama.cpp and its server, prebuilt CPU wheels) when it loads, else ``None``."""
    try:
        import xllamacpp
    except Exception:
        return None
    return getattr(xllamacpp, "__version__", None) or "unknown"


def gguf_status() -> dict[str, Any]:
    """What the GGUF step can do here: the converter folder, the llama.cpp runtime, and why not if not."""
    conv = llama_cpp_converter_dir()
    server = xllamacpp_version()
    bindings = llama_cpp_bindings()
    reasons = []
    if conv is None:
        reasons.append("llama.cpp's convert_hf_to_gguf.py is not extracted yet (run `ftlab gguf-setup` once)")
    if server is None and bindings is None:
        reasons.append("neither xllamacpp nor llama-cpp-python is installed, so the GGUF cannot be loaded back "
                       "(pip install -c constraints.txt xllamacpp: prebuilt wheels, no compile)")
    try:
        import sentencepiece  # noqa: F401  (the converter imports it for every Llama model)
    except ImportError:
        reasons.append("the converter needs sentencepiece (pip install -c constraints.txt sentencepiece)")
    return {"converter": str(conv) if conv else None, "server": server, "bindings": bindings,
            "ready": not reasons, "reason": "; ".join(reasons) or None}
