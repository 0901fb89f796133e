import re

from tests.helpers import ROOT


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert len(blocks) >= 2, "the README must open with two bash commands"
    ci = (ROOT / ".ci" / "run").read_text()
    m = re.search(r"TEST_COMMAND='(.*)'", ci)
    assert m and m.group(1) == blocks[1].strip(), f"CI runs {m and m.group(1)!r}, README says {blocks[1]!r}"
    assert "ftlab run" in blocks[0]
