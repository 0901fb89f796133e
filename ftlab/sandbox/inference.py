"""Chat completions from the toy model: the base model, or a fine-tuned LoRA adapter on top of it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

__all__ = ["Inference"]


class Inference:
    """Loads the toy base model once and LoRA adapters on demand; generation is serialized by a lock."""

    def __init__(self, toy_seed: int = 0, base_model: str | None = None):
        self.toy_seed = toy_seed
        self.base_model = base_model  # None: the toy
        self._lock = threading.Lock()
        self._base = None
        self._tok = None
        self._peft = None
        self._adapters: dict[str, str] = {}

    def _load_base(self) -> None:
        if self._base is not None:
            return
        from ftlab.sandbox.api import IMPORT_LOCK

        with IMPORT_LOCK:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from ftlab.toymodel import TOY_MODEL_ID, resolve_model

        path = resolve_model(self.base_model or TOY_MODEL_ID, seed=self.toy_seed)
        self._tok = AutoTokenizer.from_pretrained(path)
        self._base = AutoModelForCausalLM.from_pretrained(path)
        self._base.eval()
        from ftlab.core import tune_cpu_threads

        tune_cpu_threads(sum(p.numel() for p in self._base.parameters()))

    def _model_for(self, adapter_dir: str | None):
        self._load_base()
        if adapter_dir is None:
            return self._peft or self._base, None
        from ftlab.sandbox.api import IMPORT_LOCK

        with IMPORT_LOCK:
            from peft import PeftModel

        name = self._adapters.get(adapter_dir)
        if name is None:
            name = f"a{len(self._adapters)}"
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(self._base, adapter_dir, adapter_name=name)
                self._peft.eval()
            else:
                self._peft.load_adapter(adapter_dir, adapter_name=name)
            self._adapters[adapter_dir] = name
        return self._peft, name

    def generate(self, adapter_dir: str | None, messages: list[dict[str, Any]], *, max_tokens: int,
                 temperature: float, seed: int | None) -> tuple[str, str]:
        """``(reply, finish_reason)`` for one conversation. ``temperature == 0`` is greedy."""
        import contextlib

        import torch

        from ftlab.generation import chat_generate

        if adapter_dir is not None and not Path(adapter_dir).exists():
            raise FileNotFoundError(f"the adapter folder {adapter_dir} is gone")
        with self._lock:
            model, name = self._model_for(adapter_dir)
            if seed is not None:
                torch.manual_seed(int(seed))
            ctx = contextlib.nullcontext()
            if name is not None:
                model.set_adapter(name)
            elif self._peft is not None:
                ctx = self._peft.disable_adapter()
            with ctx:
                reply = chat_generate(model, self._tok, [messages], max_new_tokens=max_tokens,
                                      do_sample=temperature > 0, temperature=temperature or 1.0)[0]
            n_new = len(self._tok(reply, add_special_tokens=False)["input_ids"])
        return reply, "length" if n_new >= max_tokens else "stop"
