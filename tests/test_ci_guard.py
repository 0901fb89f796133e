"""Under CI=true a skipped test fails with what is missing (tests/conftest.py); elsewhere it still skips."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CASES = '''
import pytest
from tests.helpers import skip_or_fail

def test_skip_call():
    pytest.skip("no widget here")

@pytest.mark.skip(reason="static mark")
def test_skip_mark():
    pass

def test_importorskip():
    pytest.importorskip("ftlab_no_such_module")

def test_helper():
    skip_or_fail("the llama.cpp server is not installed (pip install xllamacpp)")

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    raise AssertionError
'''


@pytest.mark.parametrize("ci", ["true", ""])
def test_skips_fail_under_ci_with_the_reason(tmp_path, ci):
    (tmp_path / "test_cases.py").write_text(CASES)
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "tests.conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path / "test_cases.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    if ci:
        assert proc.returncode == 1 and "3 failed, 1 xfailed, 1 error" in out, out  # a skip mark fails at setup
        assert "CI must run this test, but the llama.cpp server is not installed" in out
        assert "CI=true: this test skipped, and CI must run it (no widget here)" in out
        assert "static mark" in out
    else:
        assert "4 skipped, 1 xfailed" in out, out


def test_no_test_names_a_path_of_this_machine():
    """Tests read their data from tests/data/ or tmp_path, never from a folder that exists only on one machine."""
    here = {str(ROOT), str(Path.home())}
    pattern = re.compile(r"""["'](/(?:work|root|home|Users|mnt|opt|srv)/[^"']*)["']""")
    found = []
    for path in sorted((ROOT / "tests").rglob("*")):
        if path.suffix not in (".py", ".json", ".jsonl", ".yaml", ".md", ".txt") or "artifacts" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), start=1):
            if any(h in line for h in here) or pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not found, "machine paths in tests:\n" + "\n".join(found)


def _run_loadgroup(tmp_path, name: str, body: str) -> subprocess.CompletedProcess:
    """Run a test file of ``body`` with this suite's conftest under ``-n 2 --dist loadgroup``."""
    (tmp_path / name).write_text(body)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "tests.conftest", "-p", "no:cacheprovider",
                           "-n", "2", "--dist", "loadgroup", "--rootdir", str(tmp_path), "-c", "/dev/null",
                           str(tmp_path / name)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_tests_reading_one_notebook_share_an_xdist_worker(tmp_path):
    """--dist loadgroup: every test that reads notebook NN's cached run lands on one worker (conftest groups them)."""
    body = "".join(f"def test_nb_{i}():\n    assert 'run_notebook(\"03\")'\n\n\ndef test_free_{i}():\n    pass\n\n\n"
                   for i in range(6))
    proc = _run_loadgroup(tmp_path, "test_groups.py", body)
    lines = [ln for ln in proc.stdout.splitlines() if "PASSED" in ln]
    grouped = {ln.split("]")[0] for ln in lines if "test_nb_" in ln}
    assert proc.returncode == 0 and len(lines) == 12, proc.stdout[-3000:]
    assert all("@notebook-03" in ln for ln in lines if "test_nb_" in ln), lines
    assert len(grouped) == 1, f"notebook 03's tests ran on {grouped}"


def test_own_run_tests_get_a_group_each(tmp_path):
    """A test marked ``own_run`` (the real-model tests: parameters no other test shares) gets an xdist group of its
    own, so two workers can split the suite's longest tests; an unmarked test stays in its notebook's group."""
    body = "import pytest\n\n" + "".join(f"@pytest.mark.own_run\ndef test_r{i}():\n    assert 'run_notebook(\"04\")'\n\n\n"
                                        for i in range(4)) + "def test_shared():\n    assert 'run_notebook(\"04\")'\n"
    proc = _run_loadgroup(tmp_path, "test_real_model.py", body)
    groups = {ln.split("@")[1].split()[0] for ln in proc.stdout.splitlines() if "PASSED" in ln and "@" in ln}
    assert proc.returncode == 0 and groups == {f"notebook-04-own-test_r{i}" for i in range(4)} | {"notebook-04"}, proc.stdout[-3000:]


def test_own_run_tests_start_first(tmp_path):
    """The own-run tests (the suite's longest) are collected first, so xdist hands them out first and the two
    workers end together; the other tests keep their order after them."""
    body = ("import pytest\n\n" + "".join(f"def test_toy{i}():\n    pass\n\n\n" for i in range(3))
            + "".join(f"@pytest.mark.own_run\ndef test_real{i}():\n    pass\n\n\n" for i in range(2)))
    (tmp_path / "test_order.py").write_text(body)
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "tests.conftest", "-p",
                           "no:cacheprovider", "--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path / "test_order.py")],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    names = [ln.split("::")[-1] for ln in proc.stdout.splitlines() if "::" in ln]
    assert names == ["test_real0", "test_real1", "test_toy0", "test_toy1", "test_toy2"], proc.stdout[-2000:]
