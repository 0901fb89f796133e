"""Scaling out: the accelerate configs, the training-config reader, the per-GPU memory split, and a real
2-process CPU DDP run (gloo) launched by `accelerate launch -m ftlab train`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from ftlab.errors import FtlabError, ParameterError
from ftlab.memory import SHAPES, estimate_memory
from ftlab.scale import (
    ACCELERATE_CONFIGS,
    ACCELERATE_DIR,
    accelerate_config,
    gpus_needed,
    launch_command,
    load_rows,
    load_run_spec,
    per_gpu_memory,
    relative_difference,
    run_launch,
    split_per_gpu,
)

GIB = 2**30


# --- the shipped accelerate configs ---------------------------------------------------------------------

def test_every_accelerate_config_parses_with_accelerate():
    from accelerate.commands.config.config_args import load_config_from_file

    types = {name: load_config_from_file(str(accelerate_config(name))).distributed_type.value
             for name in ACCELERATE_CONFIGS}
    assert types == {"single_gpu": "NO", "ddp": "MULTI_GPU", "fsdp_qlora": "FSDP", "cpu_ddp": "MULTI_GPU"}


def test_fsdp_qlora_config_has_the_documented_keys():
    cfg = yaml.safe_load(accelerate_config("fsdp_qlora").read_text())
    fsdp = cfg["fsdp_config"]
    # the PEFT guide's FSDP + QLoRA recipe (huggingface.co/docs/peft/accelerate/fsdp)
    assert fsdp["fsdp_cpu_ram_efficient_loading"] is True
    assert fsdp["fsdp_sync_module_states"] is True  # accelerate forces it with cpu_ram_efficient_loading
    assert fsdp["fsdp_use_orig_params"] is False
    assert fsdp["fsdp_sharding_strategy"] == "FULL_SHARD" and fsdp["fsdp_version"] == 1
    text = accelerate_config("fsdp_qlora").read_text()
    assert "huggingface.co/docs/bitsandbytes/main/fsdp_qlora" in text and "huggingface.co/docs/peft/accelerate/fsdp" in text
    # the training half: bf16 storage of the 4-bit codes, matching dtype, no fp32 upcast, no paged optimizer
    spec = load_run_spec(ACCELERATE_DIR / "train_70b_fsdp_qlora.yaml")
    assert spec.train.quantization == "4bit" and spec.train.bnb_4bit_quant_storage == "bfloat16"
    assert spec.train.kbit_prep is False and spec.train.extra["optim"] == "adamw_torch"


def test_cpu_ddp_config_is_two_processes_without_mixed_precision():
    cfg = yaml.safe_load(accelerate_config("cpu_ddp").read_text())
    assert cfg["num_processes"] == 2 and cfg["use_cpu"] is True and cfg["mixed_precision"] == "no"


def test_quant_storage_reaches_bitsandbytes_and_the_device_map(monkeypatch):
    import torch

    from ftlab.train import TrainConfig, _device_map, quantization_config

    q = quantization_config("4bit", "bfloat16")
    assert q.bnb_4bit_quant_storage == torch.bfloat16 and q.bnb_4bit_quant_type == "nf4"
    assert quantization_config("4bit").bnb_4bit_quant_storage == torch.uint8  # the default is unchanged
    with pytest.raises(FtlabError, match="bnb_4bit_quant_storage"):
        TrainConfig(bnb_4bit_quant_storage="int4").validate()
    for k in ("WORLD_SIZE", "LOCAL_RANK", "ACCELERATE_USE_FSDP"):
        monkeypatch.delenv(k, raising=False)
    assert _device_map(True, cuda=True) == "auto" and _device_map(True, cuda=False) == "cpu"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert _device_map(True, cuda=True) == {"": 1}  # DDP: a whole copy on this process's GPU
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert _device_map(True, cuda=True) is None  # FSDP places the shards itself
    assert _device_map(False, cuda=True) is None


# --- the training config file ---------------------------------------------------------------------------

def test_training_config_reads_yaml_numbers_and_resolves_data_paths(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}] * 3
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = tmp_path / "run.yaml"
    cfg.write_text("data: d.jsonl\nlearning_rate: 5e-3\nmax_steps: 4\nquantization: none\nmax_train_rows: 2\n")
    spec = load_run_spec(cfg)
    assert spec.train.learning_rate == 0.005 and spec.train.max_steps == 4  # YAML reads 5e-3 as text
    assert spec.data == str(tmp_path / "d.jsonl")
    train, evals, data_file = load_rows(spec)
    assert len(train) == 2 and evals is None and data_file == spec.data
    toy_train, toy_eval, _ = load_rows(load_run_spec({"max_eval_rows": 5}))
    assert len(toy_eval) == 5 and len(toy_train) > 100


def test_training_config_errors_name_the_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model_id: ftlab/toy-llama\nlerning_rate: 0.1\n")
    with pytest.raises(ParameterError, match=r"bad.yaml line 2: unknown setting 'lerning_rate'"):
        load_run_spec(cfg)
    cfg.write_text("max_steps: many\n")
    with pytest.raises(ParameterError, match=r"line 1: max_steps='many' must be int"):
        load_run_spec(cfg)
    cfg.write_text("max_steps: [1,\n")
    with pytest.raises(FtlabError, match="not valid YAML"):
        load_run_spec(cfg)
    with pytest.raises(FtlabError, match="not found"):
        load_run_spec(tmp_path / "missing.yaml")
    (tmp_path / "d.jsonl").write_text('{"messages": []}\nnot json\n')
    cfg.write_text("data: d.jsonl\n")
    with pytest.raises(FtlabError, match=r"d.jsonl line 2: not valid JSON"):
        load_rows(load_run_spec(cfg))


def test_launch_command_is_accelerate_launch_of_the_ftlab_module():
    cmd = launch_command("run.yaml", "fsdp_qlora", num_processes=2, port=29555, output_dir="out")
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--config_file") + 1].endswith("ftlab/accelerate/fsdp_qlora.yaml")
    assert cmd[-7:] == ["-m", "ftlab", "train", "--config", "run.yaml", "--out", "out"]
    with pytest.raises(ParameterError, match="accelerate config 'tpu'"):
        launch_command("run.yaml", "tpu")


# --- memory per GPU -------------------------------------------------------------------------------------

def test_ddp_replicates_everything_plus_gradient_buckets():
    est = estimate_memory("llama-3.1-8b", 1024, 4, gradient_checkpointing=True)
    m = split_per_gpu(est, SHAPES["llama-3.1-8b"], 2, "ddp")
    assert m.sharded == {}
    assert m.replicated["ddp_gradient_buckets"] == est.breakdown["lora_params"]
    assert m.total == pytest.approx(est.total + est.breakdown["lora_params"], rel=0.01)
    assert gpus_needed("llama-3.1-70b", 1024, 1, 24, strategy="ddp", gradient_checkpointing=True) is None


def test_fsdp_divides_the_shardable_parts_and_keeps_the_rest():
    shape = SHAPES["llama-3.1-70b"]
    est = estimate_memory(shape, 1024, 1, gradient_checkpointing=True, kbit_prep=False, optim="adamw")
    b = est.breakdown
    m2, m4 = split_per_gpu(est, shape, 2, "fsdp"), split_per_gpu(est, shape, 4, "fsdp")
    # sharded: ÷N, and the 4-bit codes plus the quantization state are the quantized weights
    assert m2.sharded["optimizer_states"] == pytest.approx(b["optimizer_states"] / 2, abs=1)
    assert m2.sharded["weights_4bit_codes"] * 2 + m2.replicated["weights_quant_state"] == pytest.approx(
        b["weights_quantized"], abs=2)
    codes = sum((i * o + 1) // 2 for i, o in shape.linear_shapes().values()) * shape.num_layers
    assert m2.sharded["weights_4bit_codes"] * 2 == pytest.approx(codes, rel=1e-4)
    # not sharded: the micro-batch's activations, and the gathered units (2 layers, the root with embeddings)
    for k in ("activations", "backward_transients", "logits_and_loss"):
        assert m2.replicated[k] == m4.replicated[k] == b[k]
    assert m2.replicated["fsdp_gathered_root"] == pytest.approx(b["weights_embeddings_lm_head"] / 2, abs=1)
    layer = (codes + b["weights_other"] + b["lora_params"]) / shape.num_layers
    assert m2.replicated["fsdp_gathered_layers"] == pytest.approx(2 * layer / 2, rel=0.01)
    # 70B: about 43 GiB on one GPU, about 26 GiB each on two; more GPUs help less and less
    assert 40 < est.total_gib < 48 and 23 < m2.total_gib < 29
    assert m4.total_gib < m2.total_gib < est.total_gib
    assert (m2.total_gib - m4.total_gib) < (est.total_gib - m2.total_gib)
    one = split_per_gpu(est, shape, 1, "fsdp")
    assert one.total == pytest.approx(est.total, rel=0.001)  # one "shard" is the single-GPU estimate


def test_gpus_needed_for_the_seeds_70b_claim():
    kw = {"gradient_checkpointing": True, "kbit_prep": False, "optim": "adamw"}
    on_24 = gpus_needed("llama-3.1-70b", 1024, 1, 24, **kw)
    on_80 = gpus_needed("llama-3.1-70b", 1024, 1, 80, **kw)
    assert on_80.n_gpus == 1  # fits one 80 GB GPU (article 001: "or A100 80GB")
    assert on_24.n_gpus >= 3 and on_24.total_gib <= 0.92 * 24  # 2 × 24 GB is not enough at 1024 tokens
    assert per_gpu_memory("llama-3.1-70b", 1024, 1, n_gpus=on_24.n_gpus - 1, **kw).total_gib > 0.92 * 24
    with pytest.raises(ParameterError, match="strategy"):
        per_gpu_memory("llama-3.1-8b", 512, 1, strategy="zero3")


def test_relative_difference():
    assert relative_difference(1.5, 1.5) == 0
    assert relative_difference(0.99, 1.0) == pytest.approx(0.01)
    with pytest.raises(ParameterError):
        relative_difference(1.0, 0.0)


# --- the real thing: 2 processes over gloo ---------------------------------------------------------------

@pytest.mark.slow
def test_cpu_ddp_qlora_through_accelerate_launch(tmp_path):
    """QLoRA (4-bit on the CPU) on 2 processes: `accelerate launch --config_file cpu_ddp.yaml -m ftlab train`."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(textwrap.dedent("""\
        data: toy:support
        max_train_rows: 64
        max_eval_rows: 32
        quantization: 4bit
        per_device_train_batch_size: 4
        max_steps: 8
        eval_steps: 4
        save_steps: 8
        logging_steps: 2
        overfit_patience: null
        report_to: none
        """))
    out = tmp_path / "out"
    cmd = launch_command(cfg, "cpu_ddp", output_dir=str(out))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert sum(line.startswith("trained ") for line in proc.stdout.splitlines()) == 1  # rank 0 alone reports
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["effective_batch"] == 8 and summary["global_step"] == 8
    assert summary["eval_loss"][-1][1] < summary["eval_loss"][0][1]  # it learned
    card = json.loads((out / "run_card.json").read_text())
    assert card["distributed"] == {"processes": 2, "distributed_type": "MULTI_CPU", "effective_batch": 8}
    assert card["model"]["quantization"] == "4bit"
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def test_run_launch_reports_a_failing_launch_in_one_line(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("data: missing.jsonl\n")
    with pytest.raises(FtlabError, match=r"accelerate launch failed \(exit 1\).*missing.jsonl not found"):
        run_launch(cfg, "cpu_ddp", output_dir=str(tmp_path / "out"), timeout=300)


NOTEBOOK_LAUNCH = """
import sys, torch
from ftlab.scale import launch_notebook

def all_reduce(folder):
    import torch.distributed as dist
    from accelerate import PartialState
    state = PartialState(cpu=True)
    t = torch.tensor([float(state.process_index + 1)])
    dist.all_reduce(t)
    open(f"{folder}/rank{state.process_index}.txt", "w").write(f"{state.backend} {state.num_processes} {t.item()}")

launch_notebook(all_reduce, (sys.argv[1],), num_processes=2)
"""


def test_launch_notebook_forks_two_gloo_processes(tmp_path):
    proc = subprocess.run([sys.executable, "-c", NOTEBOOK_LAUNCH, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert sorted(p.read_text() for p in tmp_path.glob("rank*.txt")) == ["gloo 2 3.0", "gloo 2 3.0"]


def test_launch_notebook_refuses_a_kernel_that_cannot_fork(monkeypatch):
    from accelerate.state import AcceleratorState

    from ftlab.scale import launch_notebook

    monkeypatch.setattr(AcceleratorState, "_shared_state", {"distributed_type": "NO"})
    with pytest.raises(FtlabError, match="already ran in this kernel"):
        launch_notebook(print, num_processes=2)
    monkeypatch.setattr(AcceleratorState, "_shared_state", {})
    monkeypatch.setitem(sys.modules, "bitsandbytes", sys.modules.get("bitsandbytes") or object())
    with pytest.raises(FtlabError, match="bitsandbytes is already imported"):
        launch_notebook(print, num_processes=2)


def test_train_command_is_registered(cli):
    code, out, _ = cli("train", "--help")
    assert code == 0 and "--config" in out and "accelerate launch" in out
    code, _, err = cli("train", "--config", str(Path("no/such.yaml")))
    assert code == 2 and "not found" in err
