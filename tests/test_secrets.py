"""Secret hygiene: with a (fake) ``OPENAI_API_KEY`` in the environment, nothing ftlab writes holds it.

Notebook 03 takes the real-API code path whenever ``OPENAI_API_KEY`` is set; ``OPENAI_BASE_URL`` points
the SDK at a sandbox, so the run is offline and still exercises the key-handling path. ``ftlab run
--only 00 03`` runs with the key set (and the SDK's debug logging on, which papermill records in the
executed notebooks), the sandbox logs every request, and a training run writes TensorBoard logs and a
run card. Then every file written, the console output and the captured logs are scanned: 0 hits.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets

import pytest

from ftlab import data
from ftlab.sandbox import SandboxProcess

pytestmark = pytest.mark.notebook


def _needles(key: str) -> list[bytes]:
    """The key as it could appear: raw, base64, UTF-16, and a long-enough tail (a partial print)."""
    raw = key.encode()
    return [raw, base64.b64encode(raw), key.encode("utf-16-le"), raw[-24:]]


def scan(paths, key: str) -> list[str]:
    hits = []
    for p in paths:
        blob = p.read_bytes()
        hits += [f"{p}: {n[:8]!r}…" for n in _needles(key) if n in blob]
    return hits


@pytest.mark.slow  # notebooks 00 and 03 (a real sandbox job) and a short training run: ~2-3 min on 2 cores
def test_a_key_in_the_environment_leaks_into_nothing_written(tmp_path, monkeypatch, cli, caplog, capfd):
    key = "sk-proj-ftlabFAKE" + secrets.token_urlsafe(32)
    caplog.set_level(logging.DEBUG)
    with SandboxProcess(tmp_path / "sandbox", verbose=True) as sbx:
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_BASE_URL", sbx.url)
        monkeypatch.setenv("OPENAI_LOG", "debug")  # the SDK's own debug logs, captured in the notebooks
        run = tmp_path / "run"
        code, out, err = cli("run", "--only", "00", "03", "--out", str(run), "--quiet",
                             "-p", "n_train", "40", "-p", "n_validation", "10", "-p", "n_epochs", "1",
                             "-p", "n_compare", "2", "-p", "poll_seconds", "0.5")
        assert code == 0, out[-3000:] + err[-3000:]
        nb03 = json.loads((run / "summary.json").read_text())["notebooks"]["03_openai_finetune.ipynb"]
        assert nb03["figures"]["api_mode"] == "openai" and nb03["figures"]["job_status"] == "succeeded"

        from ftlab.train import TrainConfig, train

        sp = data.support_splits()
        result = train(TrainConfig(output_dir=str(tmp_path / "train"), quantization="none", max_steps=4,
                                   eval_steps=2, save_steps=2, logging_steps=1, overfit_patience=None,
                                   report_to="tensorboard"), sp["train"][:32], sp["validation"][:8])
        assert result.global_step == 4
    console = tmp_path / "console.txt"
    captured = capfd.readouterr()
    console.write_text(out + err + captured.out + captured.err + caplog.text, encoding="utf-8")

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    kinds = {
        "executed notebooks": [p for p in files if p.suffix == ".ipynb"],
        "summary.json": [p for p in files if p.name == "summary.json"],
        "run cards": [p for p in files if p.name.startswith("run_card.")],
        "TensorBoard": [p for p in files if p.name.startswith("events.out.tfevents")],
        "logs": [p for p in files if p.suffix == ".log"] + [console],
    }
    for kind, paths in kinds.items():
        assert paths, f"no {kind} were written: the scan would prove nothing"
    assert {p.name for p in kinds["run cards"]} == {"run_card.json", "run_card.md"}  # (sandbox jobs keep none)
    nb = (run / "03_openai_finetune.ipynb").read_text()
    assert "Request options" in nb or "HTTP Request" in nb, "the SDK's debug log did not reach the notebook"
    sandbox_log = (tmp_path / "sandbox" / "sandbox.log").read_text()
    assert '"POST /v1/files HTTP/1.1" 200' in sandbox_log  # request logging was on

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for ev in kinds["TensorBoard"]:
        acc = EventAccumulator(str(ev))
        acc.Reload()
        assert acc.Tags()["scalars"], ev  # readable, with scalars
    assert scan(files, key) == []
    assert len(files) > 20
    control = tmp_path / "control.txt"  # the scanner itself finds a key that is there
    control.write_bytes(b"Authorization: Basic " + base64.b64encode(key.encode()))
    assert scan([control], key)
