"""Training with TRL's ``DPOTrainer`` and ``GRPOTrainer`` on top of an SFT adapter, cached like SFT runs."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ftlab.core import cache_dir, folder_lock, seed_everything, stable_hash
from ftlab.errors import FtlabError
from ftlab.preference.formats import from_openai_dpo
from ftlab.preference.pairs import preference_pairs
from ftlab.preference.reward import support_reward
from ftlab.train import TrainConfig, load_base, training_key, use_cuda

__all__ = [
    "PreferenceResult",
    "dpo_from_spec",
    "dpo_train",
    "dpo_train_cached",
    "grpo_train",
    "grpo_train_cached",
]


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
@dataclass
class PreferenceResult:
    """What a DPO or GRPO run produced."""

    method: str
    adapter_dir: str
    history: list[dict[str, Any]]
    global_step: int
    seconds: float
    cached: bool = False
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def last(self, key: str) -> float | None:
        """The last logged value of a metric (e.g. ``"rewards/margins"``, ``"kl"``)."""
        vals = [h[key] for h in self.history if key in h]
        return vals[-1] if vals else None


def _common_args(cfg: TrainConfig) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    args = dict(output_dir=cfg.output_dir, learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
                max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
                gradient_accumulation_steps=cfg.gradient_accumulation_steps, logging_steps=cfg.logging_steps,
                save_strategy="no", lr_scheduler_type=cfg.lr_scheduler_type, warmup_steps=cfg.warmup_ratio,
                seed=cfg.seed, data_seed=cfg.seed, report_to=[] if cfg.report_to == "none" else [cfg.report_to],
                bf16=cuda, use_cpu=not cuda, gradient_checkpointing=cfg.gradient_checkpointing,
                dataloader_num_workers=0, disable_tqdm=False, logging_first_step=True)
    args.update(cfg.extra)  # other trainer arguments, as TrainConfig.extra does for SFT
    return args


def _policy(cfg: TrainConfig, adapter_dir: str | None, attn_implementation: str | None = None):
    """The base model (as ``ftlab.train.load_base`` loads it) with the SFT adapter, trainable, or ``None`` for a new LoRA."""
    from peft import LoraConfig, PeftModel

    from ftlab.train import target_modules_for

    model, tokenizer, _ = load_base(cfg.model_id, cfg.quantization, seed=cfg.toy_seed,
                                    attn_implementation=attn_implementation)
    if adapter_dir:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True), tokenizer, None
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules or target_modules_for(model), task_type="CAUSAL_LM")
    return model, tokenizer, lora


def _as_dataset(rows: Sequence[dict[str, Any]]):
    from datasets import Dataset

    return Dataset.from_list([dict(r) for r in rows])


def dpo_train(pairs: Sequence[dict[str, Any]], cfg: TrainConfig, *, adapter_dir: str | None = None,
              beta: float = 0.1, sft_weight: float = 0.0, callbacks: Sequence[Any] = ()) -> PreferenceResult:
    """Train with TRL's ``DPOTrainer`` on ``{"prompt", "chosen", "rejected"}`` pairs.

    Starting from an SFT adapter (``adapter_dir``), TRL keeps a frozen copy of it as the reference model
    (a second adapter named ``ref``); without one, a new LoRA is trained against the base model.
    ``cfg`` is ftlab's ``TrainConfig`` (learning rate, epochs, batch, LoRA); ``beta`` is DPO's β: higher
    keeps the model closer to the reference. ``sft_weight`` > 0 adds an SFT (NLL) term on the chosen reply,
    weighted by it (TRL's ``loss_type=["sigmoid", "sft"]``, "DPO + NLL" / RPO): pure DPO may lower both replies'
    likelihoods and move only their difference; the SFT term keeps the chosen reply likely, so the behaviour moves.
    The adapter is saved in ``<output_dir>/adapter``.
    """
    from trl import DPOConfig, DPOTrainer

    from ftlab.train import DivergenceGuard  # a TrainerCallback class, made on first use

    cfg.validate()
    if not pairs:
        raise FtlabError("dpo_train: no preference pairs")
    if not (beta > 0 and math.isfinite(beta)):
        raise FtlabError(f"beta={beta}: DPO's beta must be a positive number (0.1 is the usual value)")
    if not (sft_weight >= 0 and math.isfinite(sft_weight)):
        raise FtlabError(f"sft_weight={sft_weight}: the SFT term's weight must be >= 0 (0 is pure DPO, 1.0 is RPO's)")
    seed_everything(cfg.seed)
    started = time.perf_counter()
    model, tokenizer, lora = _policy(cfg, adapter_dir)
    losses = dict(loss_type=["sigmoid", "sft"], loss_weights=[1.0, sft_weight]) if sft_weight > 0 else {}
    args = DPOConfig(**{"max_length": cfg.max_length, **_common_args(cfg)}, beta=beta, **losses)
    rows = [{k: p[k] for k in ("prompt", "chosen", "rejected", "tools") if k in p} for p in pairs]
    guard = DivergenceGuard()
    trainer = DPOTrainer(model=model, args=args, train_dataset=_as_dataset(rows), processing_class=tokenizer,
                         peft_config=lora, callbacks=[*callbacks, guard])
    result = _train_and_save("dpo", trainer, guard, tokenizer, cfg, started,
                             {"beta": beta, "sft_weight": sft_weight, "n_pairs": len(pairs)})
    result.summary["final_loss"] = result.last("loss")
    return result


def grpo_train(rows: Sequence[dict[str, Any]], cfg: TrainConfig, *, adapter_dir: str | None = None,
               beta: float = 0.04, num_generations: int = 4, max_completion_length: int = 32,
               temperature: float = 1.0, top_k: int = 50, mask_truncated_completions: bool = True,
               reward_funcs: Sequence[Any] | None = None,
               callbacks: Sequence[Any] = ()) -> PreferenceResult:
    """Train with TRL's ``GRPOTrainer``: ``num_generations`` sampled replies per prompt, scored by
    ``support_reward`` (or ``reward_funcs``), advantages relative to the group's mean.

    ``beta`` > 0 keeps a KL penalty to the reference (the starting adapter) and makes TRL log ``kl``.
    ``per_device_train_batch_size`` counts completions, so it must be a multiple of ``num_generations``.
    ``temperature``/``top_k`` are the sampling of the group (``top_k=50`` is transformers' own default, which
    ``mean_reward`` samples with too). ``mask_truncated_completions`` leaves replies cut at
    ``max_completion_length`` out of the loss: on a small model they are mostly noise.
    """
    from trl import GRPOConfig, GRPOTrainer

    from ftlab.train import DivergenceGuard

    cfg.validate()
    if not rows:
        raise FtlabError("grpo_train: no prompts")
    if cfg.per_device_train_batch_size % num_generations:
        raise FtlabError(f"per_device_train_batch_size={cfg.per_device_train_batch_size} must be a multiple of "
                         f"num_generations={num_generations} (GRPO compares the replies of one prompt)")
    seed_everything(cfg.seed)
    started = time.perf_counter()
    # GRPO left-pads its prompts, so the pad positions' attention rows are fully masked; in bf16 on CUDA the SDPA
    # backward turns those into NaN gradients at the first step (seen on an H100 with SmolLM2; cf. TRL issue 7181).
    # Eager attention masks with a large negative number instead of -inf and stays finite.
    model, tokenizer, lora = _policy(cfg, adapter_dir, "eager" if use_cuda(cfg.device) else None)
    args = GRPOConfig(**_common_args(cfg), beta=beta, num_generations=num_generations,
                      max_completion_length=max_completion_length, temperature=temperature, top_k=top_k,
                      mask_truncated_completions=mask_truncated_completions)
    guard = DivergenceGuard()  # stops before TRL samples from NaN weights (a CUDA assert that kills the kernel)
    trainer = GRPOTrainer(model=model, reward_funcs=list(reward_funcs or [support_reward]), args=args,
                          train_dataset=_as_dataset(rows), processing_class=tokenizer, peft_config=lora,
                          callbacks=[*callbacks, guard])
    return _train_and_save("grpo", trainer, guard, tokenizer, cfg, started,
                           {"beta": beta, "n_prompts": len(rows), "num_generations": num_generations})


def _train_and_save(method: str, trainer, guard, tokenizer, cfg: TrainConfig, started: float,
                    summary: dict[str, Any]) -> PreferenceResult:
    """Train, check the DivergenceGuard, save the policy's adapter in ``<output_dir>/adapter``."""
    trainer.train()
    guard.check(method.upper(), f"{method}_learning_rate", cfg.learning_rate)
    out = Path(cfg.output_dir) / "adapter"
    trainer.model.save_pretrained(str(out), selected_adapters=["default"])
    tokenizer.save_pretrained(str(out))
    return PreferenceResult(method, str(out), trainer.state.log_history, trainer.state.global_step,
                            round(time.perf_counter() - started, 2),
                            summary=dict(summary))


def _cached(method: str, cfg: TrainConfig, rows, extra: dict[str, Any], run) -> PreferenceResult:
    key = stable_hash({"method": method, "base": training_key(replace(cfg, output_dir=""), [{"messages": []}]),
                       "rows": stable_hash(rows, 16), **extra}, 16)
    folder = cache_dir("adapters") / f"{method}-{key}"
    with folder_lock(folder):
        done = folder / "result.json"
        if done.exists():
            info = json.loads(done.read_text())
            if Path(info["adapter_dir"]).is_dir():
                return PreferenceResult(**{**info, "cached": True})
        result = run(replace(cfg, output_dir=str(folder)))
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(result.to_dict(), default=str))
        tmp.replace(done)
        return result


def dpo_train_cached(pairs, cfg: TrainConfig, *, adapter_dir: str | None = None, beta: float = 0.1,
                     sft_weight: float = 0.0) -> PreferenceResult:
    """``dpo_train``, reusing an identical earlier run from ``$FTLAB_CACHE/adapters`` (same config, pairs, start,
    beta and SFT weight)."""
    return _cached("dpo", cfg, list(pairs), {"adapter": _adapter_key(adapter_dir), "beta": beta, "sft_weight": sft_weight},
                   lambda c: dpo_train(pairs, c, adapter_dir=adapter_dir, beta=beta, sft_weight=sft_weight))


def grpo_train_cached(rows, cfg: TrainConfig, *, adapter_dir: str | None = None, **kwargs: Any) -> PreferenceResult:
    """``grpo_train``, reusing an identical earlier run (same config, prompts, start and GRPO settings)."""
    return _cached("grpo", cfg, list(rows), {"adapter": _adapter_key(adapter_dir), **kwargs},
                   lambda c: grpo_train(rows, c, adapter_dir=adapter_dir, **kwargs))


def dpo_from_spec(spec) -> dict[str, Any]:
    """``ftlab train --config`` with ``method: dpo``: DPO from a parsed config (``ftlab.scale.RunSpec``).

    ``data`` is ``toy:support``/``toy:preference`` (``preference_pairs()["train"]``) or a JSONL file in
    OpenAI's preference format, checked by ``ftlab validate --method dpo`` first; ``sft_adapter`` the adapter
    to start from, ``beta`` DPO's beta. Writes ``summary.json`` (the SFT runner's keys plus the reward
    margin) and ``run_card.json``; returns the summary.
    """
    from ftlab.errors import ParameterError
    from ftlab.runcard import hardware, library_versions, write_run_card
    from ftlab.validate_dpo import validate_dpo_file

    if spec.data in ("toy:support", "toy:preference"):
        pairs = preference_pairs(spec.train.toy_seed)["train"]
    else:
        report = validate_dpo_file(spec.data)
        if not report.ok:
            shown = "; ".join(f"line {f.line}: {f.message}" if f.line else f.message for f in report.errors[:5])
            raise ParameterError(f"data {spec.data}: not a valid preference file ({shown}); "
                                 f"see `ftlab validate {spec.data} --method dpo`")
        lines = Path(spec.data).read_text(encoding="utf-8-sig").splitlines()
        pairs = [from_openai_dpo(json.loads(line)) for line in lines if line.strip()]
    if spec.max_train_rows:
        pairs = pairs[: spec.max_train_rows]
    result = dpo_train(pairs, spec.train, adapter_dir=spec.sft_adapter, beta=spec.beta)
    cfg = spec.train
    loss = [(h["step"], h["loss"]) for h in result.history if "loss" in h]
    summary = {"method": "dpo", "beta": spec.beta, "processes": 1,
               "per_device_train_batch_size": cfg.per_device_train_batch_size,
               "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
               "effective_batch": cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps,
               "global_step": result.global_step, "final_train_loss": loss[-1][1] if loss else None,
               "final_eval_loss": None, "best_eval_loss": None, "train_loss": loss, "eval_loss": [],
               "final_reward_margin": result.last("rewards/margins"),
               "final_reward_accuracy": result.last("rewards/accuracies"),
               "stop_reason": f"completed {cfg.num_train_epochs:g} epoch(s)" if cfg.max_steps <= 0
               else f"completed max_steps={cfg.max_steps}",
               "seconds": result.seconds, "output_dir": cfg.output_dir, "adapter_dir": result.adapter_dir,
               "config": spec.source, "data": spec.data, "n_pairs": len(pairs), "sft_adapter": spec.sft_adapter,
               "quantization": cfg.quantization}
    out = Path(cfg.output_dir)
    card = {"run_name": out.name, "method": "dpo", "model": {"model_id": cfg.model_id, "sft_adapter": spec.sft_adapter},
            "data": {"file": spec.data, "n_pairs": len(pairs), "fingerprint": "hash:" + stable_hash(pairs, 16)},
            "hyperparameters": {**asdict(cfg), "beta": spec.beta}, "libraries": library_versions(),
            "hardware": hardware(), "results": {k: summary[k] for k in ("final_train_loss", "final_reward_margin",
                                                                        "global_step", "seconds")}}
    summary["run_card"] = str(write_run_card(out, card))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _adapter_key(adapter_dir: str | None) -> str:
    if not adapter_dir:
        return ""
    from ftlab.core import file_sha256

    files = sorted(Path(adapter_dir).glob("adapter_model.*"))
    return stable_hash([file_sha256(f) for f in files], 16) if files else str(adapter_dir)
