"""Running the GGUF: a llama.cpp server (xllamacpp) or llama-cpp-python, and greedy parity with the
Hugging Face model.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError
from ftlab.generation import _messages_for_prompt
from ftlab.merge.gguf import llama_cpp_bindings, xllamacpp_version

__all__ = ["GGUFParity", "LlamaServer", "gguf_parity", "llama_server", "server_reply"]


class LlamaServer:
    """llama.cpp's own HTTP server (``llama-server``'s code, through ``xllamacpp``) on 127.0.0.1, one GGUF loaded.

    It speaks the OpenAI API under ``base_url + "/v1"`` and llama.cpp's native routes (``/tokenize``,
    ``/completion``) under ``base_url``. Start and stop it with ``llama_server``.
    """

    def __init__(self, base_url: str, model: str, gguf_file: str) -> None:
        self.base_url, self.model, self.gguf_file = base_url, model, gguf_file
        self.stopped = False

    def request(self, path: str, body: dict[str, Any] | None = None, *, timeout: float = 300) -> Any:
        """GET (no body) or POST JSON to a native route; llama.cpp's error message on failure."""
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise FtlabError(f"llama.cpp server {path}: HTTP {exc.code}: {exc.read()[:300]!r}") from None

    def is_up(self) -> bool:
        try:
            return self.request("/health", timeout=2).get("status") == "ok"
        except Exception:
            return False

    def __repr__(self) -> str:
        return f"LlamaServer({self.base_url!r}, model={self.model!r}, stopped={self.stopped})"


@contextmanager
def llama_server(gguf_file: str | os.PathLike[str], *, n_ctx: int = 2048, threads: int = 1) -> Iterator[LlamaServer]:
    """Serve a GGUF with llama.cpp's OpenAI-compatible server on 127.0.0.1 (a free port); stopped on exit.

    ``xllamacpp`` (a default dependency: prebuilt wheels, no compile) runs llama.cpp's server code in
    this process. Example::

        with llama_server("runs/06_merge/merged-f32.gguf") as srv:
            OpenAI(base_url=srv.base_url + "/v1", api_key="local").chat.completions.create(
                model=srv.model, messages=[{"role": "user", "content": "hi"}], max_tokens=16)
    """
    import gc

    try:
        import xllamacpp as xlc
    except Exception as exc:
        raise FtlabError(f"xllamacpp is not usable here ({type(exc).__name__}: {exc}); it is one of ftlab's "
                         "dependencies: pip install -c constraints.txt xllamacpp") from None
    path = Path(gguf_file)
    if not path.is_file():
        raise FtlabError(f"gguf_file {path}: no such file (convert one with ftlab.merge.convert_to_gguf)")
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # a free port, chosen by the server
    params.n_parallel = 1
    params.n_ctx = n_ctx
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = 0  # errors only
    params.warmup = False
    params.use_jinja = True  # the GGUF's own chat template, rendered as Hugging Face renders it
    server = xlc.Server(params)
    handle = None
    try:
        handle = LlamaServer(server.listening_address.rstrip("/"), "", str(path))
        deadline = time.monotonic() + 60
        while not handle.is_up():
            if time.monotonic() > deadline:
                raise FtlabError(f"llama.cpp's server on {handle.base_url} did not become ready in 60 s")
            time.sleep(0.2)
        handle.model = handle.request("/v1/models")["data"][0]["id"]
        yield handle
    finally:
        del server  # xllamacpp stops the HTTP server and frees the model when the object goes
        gc.collect()
        if handle is not None:
            for _ in range(50):
                if not handle.is_up():
                    break
                time.sleep(0.1)
            handle.stopped = not handle.is_up()


@dataclass
class GGUFParity:
    """llama.cpp against the merged Hugging Face model, on the same prompts."""

    tokenization_identical: bool  # llama.cpp tokenizes the prompt text to the same ids as the HF tokenizer
    max_abs_logprob_diff: float  # |Δ log-probability| (log-softmax of the logits), the largest compared
    compared: str  # which log-probabilities were compared
    greedy_identical: bool  # same greedy token ids
    n_prompts: int
    backend: str  # "xllamacpp (llama.cpp <version>)" or "llama-cpp-python <version>"
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.tokenization_identical and self.greedy_identical

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _prompt_ids(tokenizer, conv) -> tuple[str, list[int]]:
    text = tokenizer.apply_chat_template(_messages_for_prompt(conv), tokenize=False, add_generation_prompt=True)
    return text, tokenizer(text, add_special_tokens=False)["input_ids"]


def _hf_greedy(model, tokenizer, ids: list[int], max_new_tokens: int) -> list[int]:
    """HF greedy continuation, cut before the first end-of-sequence token."""
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([ids], device=model.device), max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, temperature=None, top_p=None, top_k=None)
    gen = out[0, len(ids):].tolist()
    return gen[: gen.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in gen else gen


def gguf_parity(gguf: str | os.PathLike[str] | LlamaServer, model, tokenizer,
                conversations: Sequence[Sequence[dict[str, Any]]], *, max_new_tokens: int = 32, n_probs: int = 20,
                backend: str | None = None) -> GGUFParity:
    """Load a GGUF with llama.cpp and compare tokenization, log-probabilities and greedy generations with HF.

    The prompt text comes from the HF chat template; llama.cpp tokenizes it itself (special tokens
    parsed), and generation starts from the HF ids so the two decoders see the same input.
    ``backend="xllamacpp"`` (the default; ``gguf`` may be a running ``LlamaServer``) asks llama.cpp's
    server for its greedy tokens and the ``n_probs`` most likely tokens' log-probabilities at each
    generated position, and compares them with HF's log-softmax on the same sequence.
    ``backend="llama-cpp-python"`` (an optional compiled extra) compares every prompt position.
    """
    backend = backend or ("xllamacpp" if isinstance(gguf, LlamaServer) or xllamacpp_version() else
                          "llama-cpp-python" if llama_cpp_bindings() else "xllamacpp")
    model.eval()
    if backend == "llama-cpp-python":
        return _parity_llama_cpp_python(str(gguf), model, tokenizer, conversations, max_new_tokens)
    if backend != "xllamacpp":
        raise FtlabError(f"backend {backend!r}: use 'xllamacpp' or 'llama-cpp-python'")
    if not isinstance(gguf, LlamaServer):
        n_ctx = min(int(getattr(model.config, "max_position_embeddings", 2048)), 4096)
        with llama_server(gguf, n_ctx=n_ctx) as server:
            return gguf_parity(server, model, tokenizer, conversations, max_new_tokens=max_new_tokens,
                               n_probs=n_probs, backend=backend)
    import torch

    server = gguf
    same_tok, same_gen, max_diff, mism = True, True, 0.0, []
    for i, conv in enumerate(conversations):
        text, ids = _prompt_ids(tokenizer, conv)
        cpp_ids = server.request("/tokenize", {"content": text, "add_special": False, "parse_special": True})["tokens"]
        same_tok &= list(cpp_ids) == list(ids)
        out = server.request("/completion", {
            "prompt": ids, "n_predict": max_new_tokens, "temperature": 0.0, "top_k": 1, "samplers": ["top_k"],
            "n_probs": n_probs, "post_sampling_probs": False, "return_tokens": True, "cache_prompt": False})
        probs = out.get("completion_probabilities") or []
        cpp_gen = [int(t) for t in out["tokens"]]
        with torch.no_grad():  # HF's log-probabilities along llama.cpp's own continuation
            seq = ids + [int(p["id"]) for p in probs]
            logp = torch.log_softmax(model(input_ids=torch.tensor([seq], device=model.device)).logits[0].float(), -1)
        for j, p in enumerate(probs):
            row = logp[len(ids) - 1 + j]
            for alt in p["top_logprobs"]:
                max_diff = max(max_diff, abs(float(row[int(alt["id"])]) - float(alt["logprob"])))
        hf_gen = _hf_greedy(model, tokenizer, ids, max_new_tokens)
        cpp_gen = [t for t in cpp_gen if t != tokenizer.eos_token_id]
        if cpp_gen != hf_gen:
            same_gen = False
            mism.append({"index": i, "hf": tokenizer.decode(hf_gen, skip_special_tokens=True),
                         "llama.cpp": tokenizer.decode(cpp_gen, skip_special_tokens=True)})
    return GGUFParity(tokenization_identical=same_tok, max_abs_logprob_diff=max_diff,
                      compared=f"the {n_probs} most likely tokens at every generated position",
                      greedy_identical=same_gen, n_prompts=len(conversations),
                      backend=f"xllamacpp {xllamacpp_version()}", mismatches=mism[:10])


def _parity_llama_cpp_python(gguf_file: str, model, tokenizer, conversations, max_new_tokens: int) -> GGUFParity:
    import numpy as np
    import torch

    try:
        from llama_cpp import Llama
    except Exception as exc:
        raise FtlabError(f"llama-cpp-python is not usable here ({type(exc).__name__}: {exc}); "
                         "install the optional extra: pip install -e '.[gguf]' (it compiles llama.cpp)") from None
    n_ctx = min(int(getattr(model.config, "max_position_embeddings", 2048)), 4096)  # an 8B's 128k would be a huge KV cache
    llm = Llama(model_path=gguf_file, n_ctx=n_ctx, logits_all=True, verbose=False, n_threads=1, n_threads_batch=1, seed=0)
    eos = {tokenizer.eos_token_id, llm.token_eos()}
    same_tok, same_gen, max_diff, mism = True, True, 0.0, []
    for i, conv in enumerate(conversations):
        text, ids = _prompt_ids(tokenizer, conv)
        same_tok &= list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) == list(ids)
        llm.reset()
        llm.eval(ids)
        cpp = torch.log_softmax(torch.from_numpy(np.asarray(llm.scores[: len(ids)], dtype=np.float32)), -1)
        with torch.no_grad():
            hf = torch.log_softmax(model(input_ids=torch.tensor([ids], device=model.device)).logits[0].float().cpu(), -1)
        max_diff = max(max_diff, float((cpp - hf[:, : cpp.shape[1]]).abs().max()))
        cpp_gen: list[int] = []
        for tok in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
            if tok in eos or len(cpp_gen) >= max_new_tokens:
                break
            cpp_gen.append(int(tok))
        hf_gen = _hf_greedy(model, tokenizer, ids, max_new_tokens)
        if cpp_gen != hf_gen:
            same_gen = False
            mism.append({"index": i, "hf": tokenizer.decode(hf_gen, skip_special_tokens=True),
                         "llama.cpp": tokenizer.decode(cpp_gen, skip_special_tokens=True)})
    if hasattr(llm, "close"):
        llm.close()
    return GGUFParity(tokenization_identical=same_tok, max_abs_logprob_diff=max_diff,
                      compared="every token at every prompt position", greedy_identical=same_gen,
                      n_prompts=len(conversations), backend=f"llama-cpp-python {llama_cpp_bindings()}",
                      mismatches=mism[:10])


def server_reply(server: LlamaServer, messages: Sequence[dict[str, Any]], *, max_tokens: int = 32) -> dict[str, Any]:
    """Ask a running llama.cpp server through the real ``openai`` SDK (greedy); the reply and what served it."""
    from openai import OpenAI

    client = OpenAI(base_url=server.base_url + "/v1", api_key="local-llama-cpp", max_retries=0, timeout=300)
    resp = client.chat.completions.create(model=server.model, messages=list(messages), max_tokens=max_tokens,
                                          temperature=0.0, seed=0)
    choice = resp.choices[0]
    return {"reply": choice.message.content, "finish_reason": choice.finish_reason, "model": resp.model,
            "completion_tokens": resp.usage.completion_tokens if resp.usage else None,
            "base_url": server.base_url + "/v1"}
