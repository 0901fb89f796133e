"""Bad notebook parameters fail at the top of the notebook, in one line that names the parameter and the
accepted values, and ``ftlab run`` reports them with the notebook's name. Keys are refused as parameters.

Two levels:
- the check cell (the first code cell after ``parameters``) of every notebook is executed in-process
  with bad values, exactly as papermill's injected cell would set them: fast, so every parameter of
  every notebook gets a wrong-typed value, and each notebook a few out-of-range, unknown-choice,
  unknown-model-path or missing-file values;
- one ``ftlab run`` over every notebook with bad values executes them for real (papermill, a kernel
  each) and checks that each stops in that first cell, within seconds, and is reported by name.
"""

from __future__ import annotations

import json
import re
import traceback
from pathlib import Path

import papermill
import pytest

from ftlab.errors import ParameterError
from ftlab.runner import declared_parameters
from tests.helpers import BOOKS, NOTEBOOKS, code_cells

FILE_PARAM = re.compile(r"(_file|_csv|_jsonl|_path)$")


def run_check_cell(path: Path, **params) -> ParameterError:
    """Run the parameters cell, set ``params`` (papermill's injected cell), run the check cell; return its error."""
    cells = code_cells(path, colab=False)
    ns: dict = {"__name__": "__main__"}
    exec(compile(cells[0], f"{path.stem}:parameters", "exec"), ns)
    ns.update(params)
    try:
        exec(compile(cells[1], f"{path.stem}:check-cell", "exec"), ns)
    except ParameterError as exc:
        frames = [f.filename for f in traceback.extract_tb(exc.__traceback__)]
        assert frames[1] == f"{path.stem}:check-cell", frames  # raised by the check cell itself
        assert "\n" not in str(exc) and len(str(exc)) < 600, str(exc)
        return exc
    raise AssertionError(f"{path.name}: {params} passed the check cell")


def _wrong_value(type_name: str):
    return {"str": 12345, "int": "not-a-number", "float": "not-a-number", "bool": "yes"}.get(type_name, object())


def _params():
    for path in BOOKS:
        for name, info in declared_parameters(path).items():
            yield pytest.param(path, name, info["inferred_type_name"], id=f"{path.stem[:2]}-{name}")


@pytest.mark.parametrize(("path", "name", "type_name"), list(_params()))
def test_every_parameter_rejects_a_wrong_type_in_the_check_cell(path, name, type_name):
    value = _wrong_value(type_name)
    err = run_check_cell(path, **{name: value})
    assert f"parameter {name!r} = {value!r} has type" in str(err) and f"expected {type_name}" in str(err)


# A few bad values per notebook: (parameter, value, what the message must say).
CASES = {
    "00": [("model_id", "./models/no-such-model", ["no such model folder", "'ftlab/toy-llama'", "Hugging Face id"]),
           ("model_id", "nobody/no-such-model-ftlab", ["not in the local Hugging Face cache", "'ftlab/toy-llama'"]),
           ("model_id", str(NOTEBOOKS), ["not a model folder (no config.json"]),
           ("toy_seed", -1, ["out of range", ">= 0"]),
           ("n_probes", 5, ["out of range", "from 10 to 1000"])],
    "01": [("goal", "fame", ["not a valid choice", "valid values: behaviour, knowledge, both"]),
           ("examples_available", -5, ["out of range", ">= 0"]),
           ("cloud", "ibm", ["valid values:", "gcp", "aws"])],
    "02": [("model", "gpt-5.4", ["parameter 'model' = 'gpt-5.4':", "cannot be fine-tuned", "gpt-4.1-mini"]),
           ("model", "llama-99", ["unknown model", "fine-tunable choices"]),
           ("utilization", 1.5, ["out of range", "from 0.01 to 1.0"]),
           ("gpu", "tpu-v9", ["valid values:", "a100-40gb-on-demand"]),
           ("epochs", 2.5, ["has type float: expected int"])],
    "03": [("n_train", 5, ["out of range", "from 10 to 1020"]),
           ("model_id", "nobody/no-such-model-ftlab", ["not in the local Hugging Face cache", "'ftlab/toy-llama'"]),
           ("model", "gpt-5.4", ["not a valid choice", "gpt-4.1-mini"]),
           ("suffix", "x" * 65, ["up to 64 letters"]),
           ("poll_seconds", 0, ["out of range", ">= 0.1"])],
    "04": [("model_id", "/nonexistent/llama-3-8b", ["no such model folder", "'ftlab/toy-llama'"]),
           ("model_id", "nobody/no-such-model-ftlab", ["not in the local Hugging Face cache"]),
           ("quantization", "3bit", ["valid values: 4bit, 8bit, none"]),
           ("learning_rate", 5.0, ["out of range", "from 0.0 to 1.0"]),
           ("train_file", "/nonexistent/my_data.jsonl", ["does not exist"]),
           ("save_steps", 20, ["multiple of eval_steps = 32"]),
           ("report_to", "mlflow", ["valid values: tensorboard, wandb, none"])],
    "11": [("sft_recipe", "narrow", ["valid values: mixed, support"]),
           ("dpo_beta", 0.0, ["out of range", "from 0.001 to 2.0"]),
           ("grpo_generations", 1, ["out of range", "from 2 to 16"]),
           ("model_id", "/nonexistent/llama", ["no such model folder", "'ftlab/toy-llama'"])],
    "10": [("processes", 1, ["out of range", "from 2 to 8"]),
           ("quantization", "8bit", ["valid values: none, 4bit"]),
           ("launcher", "torchrun", ["valid values: accelerate_launch, notebook_launcher"]),
           ("average_tokens_across_devices", "yes", ["has type str: expected bool"])],
    "05": [("model_id", "/nonexistent/llama", ["no such model folder", "'ftlab/toy-llama'"]),
           ("quantization", "2bit", ["valid values: 4bit, 8bit, none"]),
           ("steps", 2, ["out of range", ">= 8"]),
           ("openai_csv", "/nonexistent/step_metrics.csv", ["does not exist"]),
           ("lr_scale", -1.0, ["out of range", "from 0.0 to 100.0"])],
    "06": [("model_id", "/nonexistent/llama", ["no such model folder", "'ftlab/toy-llama'"]),
           ("merge_mode", "average", ["valid values: full, dequantize"]),
           ("gguf_outtype", "q4", ["valid values: '', f32, f16, bf16, q8_0"]),
           ("n_check", 1, ["out of range", ">= 4"]),
           ("max_steps", -1, ["out of range", ">= 0"]),
           ("train_file", "/nonexistent/my_data.jsonl", ["does not exist"])],
    "07": [("model_id", "nobody/no-such-model-ftlab", ["not in the local Hugging Face cache"]),
           ("recipes", "aggressive", ["'aggressive'", "mixed", "support"]),
           ("max_refusal_drop", 2.0, ["out of range", "from -1.0 to 1.0"]),
           ("n_shots", 20, ["out of range", "from 0 to 8"]),
           ("max_steps", -2, ["out of range", ">= -1"]),
           ("batch_size", 0, ["out of range", "from 1 to 512"])],
    "08": [("model_id", "/nonexistent/llama", ["no such model folder", "'ftlab/toy-llama'"]),
           ("quantization", "8bit", ["valid values: none, 4bit"]),
           ("scale", 0.1, ["out of range", "from 0.25 to 20.0"]),
           ("mix_general", -1, ["out of range", "from 0 to 2000"]),
           ("use_cache", "yes", ["has type str: expected bool"])],
    "09": [("epochs", 0, ["out of range", "from 1 to 20"]),
           ("aws_mock", "no", ["has type str: expected bool"]),
           ("poll_interval", -1.0, ["out of range", "from 0 to 3600"])],
}


def _cases():
    for path in BOOKS:
        for name, value, says in CASES.get(path.stem[:2], []):
            yield pytest.param(path, name, value, says, id=f"{path.stem[:2]}-{name}={str(value)[:20]}")


@pytest.mark.parametrize(("path", "name", "value", "says"), list(_cases()))
def test_bad_values_name_the_parameter_and_the_accepted_values(path, name, value, says, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = str(run_check_cell(path, **{name: value}))
    assert msg.startswith(f"parameter {name!r}"), msg
    for s in says:
        assert s in msg, (s, msg)


def test_every_notebook_has_specific_cases():
    """05-08 and 10 land later: each numbered notebook needs its own bad-value cases above."""
    missing = [p.name for p in BOOKS if p.stem[:2] not in CASES]
    assert not missing, f"add bad-parameter cases for {missing}"


def _file_params():
    for path in BOOKS:
        for name in declared_parameters(path):
            if FILE_PARAM.search(name):
                yield pytest.param(path, name, id=f"{path.stem[:2]}-{name}")


@pytest.mark.parametrize(("path", "name"), list(_file_params()) or [pytest.param(None, None, marks=pytest.mark.skip(
    reason="no notebook in this checkout takes a data file parameter"))])
def test_a_missing_data_file_is_named(path, name):
    msg = str(run_check_cell(path, **{name: "/nonexistent/ftlab-missing.jsonl"}))
    assert f"parameter {name!r}" in msg and "does not exist" in msg


def test_model_id_accepts_the_toy_a_local_folder_and_a_cached_hub_id(tmp_path, monkeypatch):
    from ftlab.params import check_param

    assert check_param("model_id", "ftlab/toy-llama", str, model=["ftlab/toy-llama"]) == "ftlab/toy-llama"
    (tmp_path / "config.json").write_text("{}")
    assert check_param("model_id", str(tmp_path), str, model=True) == str(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("FTLAB_OFFLINE", raising=False)
    assert check_param("model_id", "meta-llama/Llama-3.1-8B-Instruct", str, model=True)  # online: the hub decides
    hub = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / "abc"
    hub.mkdir(parents=True)
    (hub / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--acme--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--acme--tiny" / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    assert check_param("model_id", "acme/tiny", str, model=True) == "acme/tiny"  # offline, but cached
    with pytest.raises(ParameterError, match="not in the local Hugging Face cache"):
        check_param("model_id", "acme/other", str, model=True)


# ---------------------------------------------------------------------------------------------
# For real: papermill kernels, through ftlab run
# ---------------------------------------------------------------------------------------------
def _bad_run_params() -> dict[str, str]:
    """Wrong-typed values (a YAML list) for parameters chosen so every notebook declares at least one."""
    declared = {p.name: set(declared_parameters(p)) for p in BOOKS}
    chosen: dict[str, str] = {}
    for names in declared.values():
        if not names & set(chosen):
            chosen[sorted(names)[0]] = "[1, 2]"
    return chosen


def test_ftlab_run_stops_each_notebook_in_its_check_cell_and_names_it(cli, tmp_path):
    out = tmp_path / "run"
    args = ["run", "--out", str(out), "--quiet"]
    for name, value in _bad_run_params().items():
        args += ["-p", name, value]
    code, stdout, _ = cli(*args)
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())["notebooks"]
    assert set(summary) == {p.name for p in BOOKS}
    for book, res in summary.items():
        assert res["status"] == "failed", book
        err = res["error"]
        assert err["ename"] == "ParameterError" and err["evalue"].startswith("parameter '"), (book, err)
        assert "has type list" in err["evalue"], (book, err)
        # the failing cell is the first one after the parameters (and papermill's injected cell; the
        # Colab setup cell, a no-op outside Colab, is not counted)
        nb = json.loads((out / book).read_text())
        code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"
                      and "colab-setup" not in c["metadata"].get("tags", [])]
        failing = next(i for i, c in enumerate(code_cells) if any(o.get("output_type") == "error" for o in c["outputs"]))
        before = [t for c in code_cells[:failing] for t in c["metadata"].get("tags", [])]
        assert failing == 2 and before == ["parameters", "injected-parameters"], (book, failing, before)
        assert f"FAILED in {book}" in stdout and err["evalue"][:60] in stdout
    md = (out / "summary.md").read_text()
    assert all(f"## {b} (failed" in md for b in summary)


def test_ftlab_run_refuses_keys_as_parameters(cli, tmp_path):
    for name, value in [("openai_api_key", "whatever"), ("suffix", "sk-proj-abcdefghijklmnop"),
                        ("hf_token", "hf_abcdefghijklmnop")]:
        code, _, err = cli("run", "--only", "03", "--out", str(tmp_path / name), "-p", name, value, "--quiet")
        assert code == 2 and f"parameter {name!r} looks like a credential" in err and err.count("\n") == 1, err
        assert value not in err
        assert not (tmp_path / name / "03_openai_finetune.ipynb").exists()


def test_notebook_refuses_an_undeclared_key_injected_by_papermill(tmp_path):
    """papermill itself (no ftlab runner) injecting a key: the check cell stops the notebook."""
    out = tmp_path / "01.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(NOTEBOOKS / "01_choose_your_path.ipynb"), str(out),
                                   parameters={"openai_api_key": "sk-ftlab-fake-0123456789"}, progress_bar=False,
                                   cwd=str(NOTEBOOKS), kernel_name="python3")
    assert e.value.ename == "ParameterError"
    assert "'openai_api_key' looks like a credential" in e.value.evalue and "rotate the key" in e.value.evalue
    assert e.value.exec_count == 4  # parameters, injected parameters, the Colab setup (a no-op here), the check cell
