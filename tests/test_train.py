"""Training: the OverfitDetector's rule, the pre-flight loss-mask checks, configs, and kill-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftlab import data
from ftlab.errors import FtlabError
from ftlab.toymodel import TOY_MODEL_ID, resolve_model
from ftlab.train import (
    LLAMA_TARGET_MODULES,
    OverfitDetector,
    TrainConfig,
    preflight_loss_mask,
    target_modules_for,
)


def test_overfit_detector_stops_after_patience_rises_in_a_row():
    d = OverfitDetector(patience=3)
    losses = [1.0, 0.8, 0.7, 0.75, 0.72, 0.74, 0.78, 0.80]
    stops = [d.update(step, loss) for step, loss in enumerate(losses, 1)]
    # 0.72 -> 0.74 -> 0.78 -> 0.80 is the first run of three rises in a row (steps 6, 7, 8).
    assert stops == [False] * 7 + [True]
    assert d.triggered_at == 8 and "best 0.7000 at step 3" in d.message


def test_overfit_detector_resets_on_improvement_and_respects_patience():
    d = OverfitDetector(patience=2)
    assert not any(d.update(s, v) for s, v in enumerate([1.0, 1.1, 0.9, 1.0, 0.95], 1))
    assert d.update(6, 1.0) is False
    assert d.update(7, 1.1) is True


def test_preflight_catches_masked_labels_and_missing_eos():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(TOY_MODEL_ID))
    rows = data.support_splits()["train"][:4]
    ok = preflight_loss_mask(tok, rows)
    assert ok["eos_trained"] and 0 < ok["trained_tokens"] < ok["total_tokens"]
    assert ok["example"].count("[[") == 1 and ok["example"].endswith("<|end|>]]")
    assert ok["loss_mask"].mode == "assistant_only" and "own chat template" in ok["loss_mask"].source
    # A template without {% generation %}, forced to assistant-only: every label masked.
    tok.chat_template = tok.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    with pytest.raises(FtlabError, match="every label is masked"):
        preflight_loss_mask(tok, rows, loss="assistant_only")
    # By default an unknown template falls back to completion-only loss, and says so.
    fallback = preflight_loss_mask(tok, rows)
    assert fallback["loss_mask"].mode == "completion_only" and "last assistant message" in fallback["loss_mask"].source
    assert fallback["example"].count("[[") == 1 and fallback["example"].endswith("<|end|>]]")
    assert fallback["trained_tokens"] == ok["trained_tokens"]  # one reply per row: the same tokens
    # A template that never emits EOS inside the assistant turn.
    tok2 = AutoTokenizer.from_pretrained(resolve_model(TOY_MODEL_ID))
    tok2.chat_template = tok2.chat_template.replace("{{ message['content'] }}{{ eos_token }}{% endgeneration %}",
                                                    "{{ message['content'] }}{% endgeneration %}{{ eos_token }}")
    with pytest.raises(FtlabError, match="no EOS token is trained"):
        preflight_loss_mask(tok2, rows)


def test_target_modules_are_the_seven_llama_projections():
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(resolve_model(TOY_MODEL_ID))
    assert target_modules_for(model) == LLAMA_TARGET_MODULES

    class NoProj:
        def named_modules(self):
            return [("experts.w1", None)]

    with pytest.raises(FtlabError, match="MoE"):
        target_modules_for(NoProj())


def test_config_validation_messages():
    with pytest.raises(FtlabError, match="quantization"):
        TrainConfig(quantization="3bit").validate()
    with pytest.raises(FtlabError, match="multiple of eval_steps"):
        TrainConfig(eval_steps=8, save_steps=12).validate()


RESUME_SCRIPT = """
import json, sys, time
from ftlab import data
from pathlib import Path
from transformers import TrainerCallback
from ftlab.train import TrainConfig, train
out, resume, pace = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])

class Progress(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        Path(out, "progress.txt").write_text(str(state.global_step))
        time.sleep(pace)  # the run to be killed is paced, so a fast machine cannot finish it before the kill

sp = data.support_splits()
cfg = TrainConfig(output_dir=out, max_steps=48, eval_steps=8, save_steps=8, save_total_limit=10, report_to="tensorboard",
                  learning_rate=3e-3, resume_from_checkpoint=True if resume else None, overfit_patience=None)
from ftlab.train import last_complete_checkpoint
start = str(last_complete_checkpoint(out)) if resume else None
r = train(cfg, sp["train"], sp["validation"][:48], callbacks=[Progress()])
print("RESULT", json.dumps({"eval": r.eval_loss, "step": r.global_step, "resumed_from": start}))
"""


def _run(out: Path, resume: bool, pace_s: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RESUME_SCRIPT, str(out), "1" if resume else "0", str(pace_s)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))


def _result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return json.loads(out.split("RESULT", 1)[1])


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_loses_at_most_save_steps(tmp_path):
    """Kill a real QLoRA run with SIGKILL after a checkpoint, resume it, compare with an uninterrupted run."""
    ref = _result(_run(tmp_path / "ref", resume=False))
    out = tmp_path / "killed"
    proc = _run(out, resume=False, pace_s=0.15)  # >= 4.8 s from checkpoint-16 to the end: the kill comes first
    deadline = time.time() + 300
    while time.time() < deadline and not any(out.glob("checkpoint-16/trainer_state.json")):
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    time.sleep(1.5)  # let it run on past the checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reached = int((out / "progress.txt").read_text())
    ckpts = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.json").exists())
    last = max(ckpts)
    assert 0 <= reached - last <= 8, f"killed at step {reached}, last checkpoint {last}: lost more than save_steps"
    # Nothing already written is corrupt: every complete checkpoint loads, TensorBoard files are readable.
    for c in ckpts:
        _assert_checkpoint_loads(out / f"checkpoint-{c}", c)
    killed_events = list((out / "runs").rglob("events.out.tfevents.*"))
    assert len(killed_events) == 1
    logged = _tensorboard_steps(killed_events[0])
    assert logged and max(logged) <= reached
    # The worst moment to be killed is mid-save: a newer checkpoint folder, cut short. Resume must skip it.
    import shutil

    torn = out / f"checkpoint-{last + 8}"
    shutil.rmtree(torn, ignore_errors=True)
    shutil.copytree(out / f"checkpoint-{last}", torn)
    (torn / "trainer_state.json").unlink()
    resumed = _result(_run(out, resume=True))
    assert resumed["step"] == 48
    assert resumed["resumed_from"] == str(out / f"checkpoint-{last}")
    # The resumed run started from the last checkpoint: at most save_steps (8) steps were redone.
    resumed_evals = [s for s, _ in resumed["eval"]]
    assert resumed_evals[-1] == 48
    final_ref, final_resumed = ref["eval"][-1][1], resumed["eval"][-1][1]
    assert abs(final_resumed - final_ref) / final_ref <= 0.02, (final_ref, final_resumed)
    # After the resume: the run card is valid JSON with the resumed results, every TensorBoard file reads,
    # the killed run's file is unchanged, and the two files together cover the run to its last step.
    card = json.loads((out / "run_card.json").read_text())
    assert card["results"]["global_step"] == 48 and card["results"]["final_eval_loss"] == final_resumed
    events = sorted((out / "runs").rglob("events.out.tfevents.*"))
    assert len(events) == 2 and killed_events[0] in events
    assert _tensorboard_steps(killed_events[0]) == logged
    steps = sorted(set().union(*(_tensorboard_steps(e) for e in events)))
    assert steps[0] == 1 and steps[-1] == 48
    _assert_checkpoint_loads(out / "checkpoint-48", 48)


def _assert_checkpoint_loads(folder: Path, step: int) -> None:
    import torch
    from safetensors.torch import load_file

    assert json.loads((folder / "trainer_state.json").read_text())["global_step"] == step
    weights = load_file(folder / "adapter_model.safetensors")
    assert weights and all(torch.isfinite(t).all() for t in weights.values()), folder
    json.loads((folder / "adapter_config.json").read_text())
    optimizer = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
    assert optimizer["state"], folder


def _tensorboard_steps(path: Path) -> set[int]:
    """The steps of the training-loss scalars in one event file (read with TensorBoard's own reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"], acc.Tags()
    return {e.step for e in acc.Scalars("train/loss")}


def test_last_complete_checkpoint_skips_a_folder_cut_short(tmp_path):
    from ftlab.train import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path) is None
    for step, state in [(8, {"global_step": 8}), (16, None), (24, "{\"global_st"), (32, {"global_step": 8})]:
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "adapter_model.safetensors").write_bytes(b"x")
        if state is not None:
            (d / "trainer_state.json").write_text(state if isinstance(state, str) else json.dumps(state))
    (tmp_path / "checkpoint-40").mkdir()  # created, nothing written yet
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-8"


def test_divergence_guard_stops_at_nan_weights_and_names_the_cause():
    """DivergenceGuard (DPO/GRPO): a step that leaves a trainable weight NaN stops training; the error says the
    gradient was broken when it happened at step 1, and names the LR parameter when it happened later."""
    import torch
    from transformers import TrainerControl, TrainerState

    from ftlab.train import DivergenceGuard

    model = torch.nn.Linear(2, 2)
    for step, expect in ((1, "not the LR"), (7, "Lower grpo_learning_rate \\(now 0.0005; try 5e-05\\)")):
        guard, state, control = DivergenceGuard(), TrainerState(), TrainerControl()
        state.global_step = step
        with torch.no_grad():
            model.weight.fill_(0.5)
        guard.on_step_end(None, state, control, model=model)
        assert not control.should_training_stop
        guard.check("GRPO", "grpo_learning_rate", 5e-4)  # finite: no error
        with torch.no_grad():
            model.weight[0, 0] = float("nan")
        guard.on_log(None, state, control, logs={"loss": 0.3, "grad_norm": float("inf")})
        guard.on_step_end(None, state, control, model=model)
        assert control.should_training_stop and guard.diverged_at == step
        with pytest.raises(FtlabError, match=expect):
            guard.check("GRPO", "grpo_learning_rate", 5e-4)


def test_with_size_defaults_fills_only_what_is_unset():
    """Notebooks 06, 07 and 10 leave a parameter at 0 or "" to take the model's size default."""
    from ftlab.train import with_size_defaults

    got = with_size_defaults("ftlab/toy-llama", learning_rate=0.0, epochs=3.0, merge_atol=0.0, gguf_outtype="")
    assert got["learning_rate"] == 5e-3 and got["epochs"] == 3.0 and got["merge_atol"] == 1e-3
    assert got["gguf_outtype"] == "f32" and got["size_class"] == "toy"
    with pytest.raises(FtlabError, match="no size default for \\['lora_r'\\]"):
        with_size_defaults("ftlab/toy-llama", lora_r=0)
