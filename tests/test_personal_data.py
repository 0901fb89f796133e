"""Personal data in a training file is named by line before it is uploaded: by ``ftlab validate`` on the
command line, and by ``workflow.upload`` (what notebook 03's upload cell calls) in a notebook."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import openai
import pytest

from ftlab import data
from ftlab.errors import PersonalDataWarning
from ftlab.sandbox import workflow as wf
from ftlab.validate import personal_data_by_line, validate_file
from tests.helpers import notebook_path

PII = {5: " my mail is jane.doe@example.com", 10: " call me on +1 415 555 0134", 21: " card 4111 1111 1111 1111",
       26: " or bob@corp.example.org", 28: " or ann\\u0040corp.example.org"}  # line 28: the @ JSON-escaped
SAYS = "email on lines 5, 26, 28; phone number on line 10; card number on line 21"


@pytest.fixture
def pii_file(tmp_path):
    rows = data.support_splits()["train"][:30]
    lines = []
    for i, row in enumerate(rows, 1):
        row = {"messages": row["messages"]}
        text = json.dumps(row)
        if i in PII:
            user = json.dumps(row["messages"][1]["content"])
            text = text.replace(user, user[:-1] + PII[i] + '"', 1)
        lines.append(text)
    path = tmp_path / "train_with_pii.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_validator_names_every_line(pii_file):
    r = validate_file(pii_file)
    assert r.ok  # a warning, not an error
    assert r.personal_data_lines == [5, 10, 21, 26, 28] == r.stats["personal_data_lines"]
    assert r.personal_data() == {5: ["email"], 10: ["phone number"], 21: ["card number"], 26: ["email"], 28: ["email"]}
    assert personal_data_by_line(pii_file.read_bytes()) == r.personal_data()
    assert "jane.doe" not in json.dumps(r.to_dict())  # findings are masked


def test_cli_warns_with_line_numbers(cli, pii_file):
    code, out, _ = cli("validate", str(pii_file))
    assert code == 0
    assert f"PERSONAL DATA: {SAYS}. Remove or mask it before uploading" in out
    assert "line 5: pii_email" in out and "line 21: pii_card_number" in out
    code, out, _ = cli("validate", str(pii_file), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["stats"]["personal_data_lines"] == [5, 10, 21, 26, 28]
    assert {(w["line"], w["code"]) for w in doc["warnings"] if w["code"].startswith("pii_")} == {
        (5, "pii_email"), (10, "pii_phone_number"), (21, "pii_card_number"), (26, "pii_email"), (28, "pii_email")}
    code, out, _ = cli("validate", str(data.write_toy_files(pii_file.parent)["upload"]))
    assert code == 0 and "PERSONAL DATA" not in out


def test_upload_warns_before_anything_is_sent(pii_file):
    dead = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test-not-secret", max_retries=0)
    with pytest.warns(PersonalDataWarning, match=f"train_with_pii.jsonl: possible personal data, {SAYS}"), \
            pytest.raises(wf.RequestFailed, match="APIConnectionError"):  # the warning came first: the request then fails
        wf.upload(dead, pii_file)
    with pytest.warns(PersonalDataWarning), pytest.raises(wf.RequestFailed, match="APIConnectionError"):  # every time, not once
        wf.upload(dead, pii_file)
    clean = data.write_toy_files(pii_file.parent)["upload"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PersonalDataWarning)
        with pytest.raises(wf.RequestFailed, match="APIConnectionError"):
            wf.upload(dead, clean)


def test_upload_warns_but_still_uploads(pii_file, tmp_path):
    from ftlab.sandbox import Sandbox

    with Sandbox(tmp_path / "sbx") as sbx:
        c = sbx.client(max_retries=0)
        with pytest.warns(PersonalDataWarning, match=SAYS):
            f = wf.upload(c, pii_file)
        assert c.files.content(f.id).read() == pii_file.read_bytes()


def test_notebook_03_uploads_through_the_checked_path():
    src = json.loads(notebook_path("03").read_text())
    cells = ["".join(c["source"]) for c in src["cells"] if c["cell_type"] == "code"]
    uploads = [c for c in cells if "files.create" in c or "wf.upload(" in c]
    assert uploads and all("files.create" not in c for c in uploads), "upload through wf.upload, which checks"


@pytest.mark.notebook
def test_notebook_03_shows_personal_data_lines_before_uploading(run_notebook):
    res = run_notebook("03")
    nb = json.loads(Path(res.output).read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    text = ["".join(o.get("text", "")) for c in code for o in c.get("outputs", [])]
    shown = next(i for i, c in enumerate(code) if any("line 11: pii_email" in "".join(o.get("text", ""))
                                                       for o in c.get("outputs", [])))
    # the training file's upload (the wind-down demo at the top uploads 10 toy rows to a gated sandbox first)
    upload = next(i for i, c in enumerate(code) if "wf.upload(" in "".join(c["source"])
                  and "winddown" not in "".join(c["source"]))
    assert shown < upload, "the personal-data warning must come before the upload"
    assert any("line 11: pii_phone_number" in t for t in text)
