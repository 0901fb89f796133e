"""What a learner sees: the notebooks in a real JupyterLab, driven by Debian's Chromium through Playwright.

papermill proves the cells run; these tests prove the widgets work in the browser. One JupyterLab
server (127.0.0.1, a token, a temporary root with copies of ``notebooks/``) and one headless Chromium
serve the whole module; both stop whatever happens. Screenshots land in ``tests/artifacts/``.

Watch it: ``FTLAB_HEADFUL=1 FTLAB_SLOWMO=300 .venv/bin/python -m pytest tests/test_browser.py``.
Expected values come from ``ftlab.cost`` and ``ftlab.paths`` here, in the test process, never from the page.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ftlab import cost, paths
from tests.helpers import BOOKS, NOTEBOOKS, ROOT
from tests.jupyterlab_driver import (
    ARTIFACTS,
    VISIBLE_NOTEBOOK,
    WIDGET_EXTENSION,
    LabError,
    LabPage,
    chromium,
    chromium_path,
    jupyterlab_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

# Two plots "match" below this mean absolute pixel difference (0..1). The same plot renders to 0.0;
# gpt-4.1-mini's and gpt-4.1's break-even plots are 0.014 apart.
PIXEL_GAP = 0.002
ALL_NOTEBOOKS = BOOKS


def _missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: run `bash scripts/setup.sh test` (the `test` extra has it)"
    if chromium_path() is None:
        return ("Debian's chromium is not installed: `bash scripts/setup.sh test` installs it when run as root, "
                "else `sudo apt-get install -y chromium`")
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(Lab, browser context): one JupyterLab and one Chromium for the module, both stopped at the end."""
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    for old in ARTIFACTS.glob("*.png") if ARTIFACTS.is_dir() else []:
        old.unlink()
    workdir = tmp_path_factory.mktemp("jupyterlab")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(jupyterlab_server(ALL_NOTEBOOKS, workdir))
        ctx = stack.enter_context(chromium(workdir))
        yield server, ctx


@pytest.fixture
def page(lab, request):
    server, ctx = lab
    p = LabPage(ctx, server, name=request.node.name.replace("test_", "").replace("[", "-").strip("]"))
    yield p
    with contextlib.suppress(Exception):
        p.page.close()
    assert not p.external_requests, f"the page tried to reach the network: {p.external_requests[:5]}"


def notebook_params(name: str) -> dict[str, Any]:
    """The defaults of a notebook's ``parameters`` cell (literal assignments), read from the file."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    ns: dict[str, Any] = {}
    exec("".join(cell["source"]), ns)
    return {k: v for k, v in ns.items() if not k.startswith("__")}


# ---------------------------------------------------------------------------------------
# Fresh notebooks render without errors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("notebook", [p.name for p in ALL_NOTEBOOKS])
def test_notebook_opens_fresh_without_errors(page, notebook):
    st = page.open(notebook)  # also checks that the ipywidgets extension is installed and enabled
    assert st["kernelName"] == "python3", f"{notebook} started kernel {st['kernelName']!r}, not python3"
    assert st["cells"], f"{notebook} shows no code cells"
    assert not page.dialogs(), f"{notebook} opened with a dialog: {page.dialogs()}"
    assert not any(c["errors"] for c in st["cells"]), f"{notebook} is committed with error outputs"
    page.screenshot("fresh")
    assert not page.page_errors, f"JavaScript errors while opening {notebook}: {page.page_errors[:3]}"
    assert not page.console_errors, f"console errors while opening {notebook}: {page.console_errors[:3]}"


# ---------------------------------------------------------------------------------------
# 02: the cost explorer follows the sliders
# ---------------------------------------------------------------------------------------
def _cost_table(tokens: int) -> list[list[str]]:
    """The rows the cost table must show for ``tokens``, computed here with ftlab.cost."""
    return [[cost.PATH_LABELS.get(r.path, r.path), r.model, r.entry, cost.cost_cell(r), r.rate, r.as_of, r.confidence,
             cost.availability_cell(r)] for r in cost.training_costs(tokens)]


def _expected_plot(model: str, gpu: str) -> bytes:
    """The PNG the kernel's inline backend makes for the break-even plot (``display(fig)``: bbox tight)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.core.pylabtools import print_figure

    fig = cost.plot_break_even(model, gpu)
    try:
        return print_figure(fig, "png", bbox_inches="tight")
    finally:
        plt.close(fig)


def _pixel_gap(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two PNGs' pixels (0 = identical, 1 = opposite; inf if sizes differ)."""
    import matplotlib.image

    x = matplotlib.image.imread(io.BytesIO(a), format="png")
    y = matplotlib.image.imread(io.BytesIO(b), format="png")
    return float("inf") if x.shape != y.shape else float(abs(x - y).mean())


def _check_cost_explorer(page: LabPage, examples: int, per_example: int, epochs: int, what: str) -> int:
    tokens = cost.training_tokens(examples, per_example, epochs)
    page.wait_for(f"{what}: training tokens", lambda: page.text(".ftlab-training-tokens-value"), f"{tokens:,}")
    page.wait_for(f"{what}: cost table", lambda: page.html_table("ftlab-cost-table"), _cost_table(tokens))
    return tokens


def _check_break_even(page: LabPage, model: str, gpu: str, data_sharing: bool, what: str) -> bytes:
    be = cost.break_even(model, gpu, data_sharing=data_sharing)
    page.wait_for(f"{what}: break-even", lambda: page.text(".ftlab-breakeven-text"), be.explain())
    want = _expected_plot(model, gpu)

    def plot() -> str:
        gap = _pixel_gap(page.image("ftlab-breakeven-plot"), want)
        return "the same picture" if gap < PIXEL_GAP else f"a picture {gap:.4f} apart (mean pixel difference)"

    page.wait_for(f"{what}: break-even plot vs ftlab.cost.plot_break_even({model!r}, {gpu!r})", plot, "the same picture")
    return page.image("ftlab-breakeven-plot")


def test_cost_explorer_follows_the_sliders(page):
    p = notebook_params("02_cost_math.ipynb")
    examples, per_example, epochs, model, gpu = p["examples"], p["tokens_per_example"], p["epochs"], p["model"], p["gpu"]
    page.open("02_cost_math.ipynb")
    page.run_all()
    page.check_widgets(expect=1)
    _check_cost_explorer(page, examples, per_example, epochs, "after Run All")
    first_plot = _check_break_even(page, model, gpu, p["data_sharing"], "after Run All")
    page.element_shot("ftlab-cost-explorer", "start")

    # Drag the epochs slider with the mouse.
    new_epochs = 5 if epochs != 5 else 2
    shown = page.drag_slider("ftlab-epochs", new_epochs)
    assert shown == new_epochs, f"dragging the epochs slider to {new_epochs} left it at {shown}"
    before = cost.training_tokens(examples, per_example, epochs)
    after = _check_cost_explorer(page, examples, per_example, new_epochs, f"epochs dragged to {new_epochs}")
    assert after != before
    page.element_shot("ftlab-cost-explorer", "epochs")

    # Type a number of examples into the slider's readout.
    new_examples = 12_340
    page.type_into_slider("ftlab-examples", new_examples)
    _check_cost_explorer(page, new_examples, per_example, new_epochs, f"typed {new_examples} examples")
    page.element_shot("ftlab-cost-explorer", "examples")

    # Another model: the break-even text and the plot follow.
    other = next(m for m in ("gpt-4.1", "gpt-4o-mini", "gpt-4.1-nano") if m != model)
    page.choose("ftlab-model", other)
    new_plot = _check_break_even(page, other, gpu, p["data_sharing"], f"model {other} chosen")
    assert _pixel_gap(new_plot, first_plot) > PIXEL_GAP, "the plot did not change with the model"
    page.element_shot("ftlab-breakeven-plot", "plot-" + other)
    page.screenshot("02-done")
    assert not page.kernel_errors_anywhere()


# ---------------------------------------------------------------------------------------
# 01: the path chooser follows the answers
# ---------------------------------------------------------------------------------------
def _check_recommendation(page: LabPage, answers: dict[str, Any], what: str) -> paths.Recommendation:
    rec = paths.choose_path(answers)
    page.wait_for(f"{what}: recommendation", lambda: page.text(".ftlab-recommendation .ftlab-recommended-path"),
                  rec.headline)
    card = page.page.locator(f"{VISIBLE_NOTEBOOK} .ftlab-recommendation .ftlab-recommendation-card")
    got = (card.get_attribute("data-path"), card.get_attribute("data-verdict"))
    assert got == (rec.path, rec.verdict), f"{what}: the card says path/verdict {got}, ftlab says {(rec.path, rec.verdict)}"
    return rec


def test_path_chooser_follows_the_answers(page):
    answers = notebook_params("01_choose_your_path.ipynb")
    page.open("01_choose_your_path.ipynb")
    page.run_all()
    page.check_widgets(expect=1)
    start = _check_recommendation(page, answers, "after Run All")
    page.element_shot("ftlab-path-form", "start")

    # The dates: an active OpenAI customer on 2026-12-02 can still start jobs (closing), not from 2027-01-06.
    answers.update(as_of="2026-12-02", openai_status="active")
    page.type_into_number("ftlab-as-of", "2026-12-02")
    page.choose("ftlab-openai-status", paths.QUESTIONS["openai_status"][1]["active"])
    active = _check_recommendation(page, answers, "active OpenAI customer on 2026-12-02")
    assert active.path == "openai" != start.path, f"the status did not move the path ({start.path} → {active.path})"
    answers["as_of"] = "2027-01-06"
    page.type_into_number("ftlab-as-of", "2027-01-06")
    closed = _check_recommendation(page, answers, "the same customer on 2027-01-06")
    assert closed.path != "openai", "the date did not move the path"
    page.element_shot("ftlab-path-form", "dates")

    # Data that must stay on our own hardware: OpenAI and managed platforms are ruled out.
    answers["data_sensitivity"] = "own_hardware"
    page.choose("ftlab-data-sensitivity", paths.QUESTIONS["data_sensitivity"][1]["own_hardware"])
    moved = _check_recommendation(page, answers, "data must stay on own hardware")
    assert moved.path != start.path, f"the precondition failed: {start.path} stays the recommendation"
    page.element_shot("ftlab-path-form", "own-hardware")

    # Type a number of examples too small to fine-tune: the verdict becomes "prompt first".
    answers["examples_available"] = 5
    page.type_into_number("ftlab-examples-available", 5)
    few = _check_recommendation(page, answers, "5 examples typed")
    assert few.verdict == "prompt_first" != moved.verdict
    page.element_shot("ftlab-path-form", "five-examples")
    assert not page.kernel_errors_anywhere()


# ---------------------------------------------------------------------------------------
# The driver itself fails loudly: a kernel error and a widget that cannot render
# ---------------------------------------------------------------------------------------
def test_kernel_errors_and_broken_widgets_fail_with_a_clear_message(lab, page):
    import nbformat

    server, _ = lab
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [
        nbformat.v4.new_code_cell("from IPython.display import display\n"
                                  "display({'application/vnd.jupyter.widget-view+json': {'model_id': 'no-such-model', "
                                  "'version_major': 2, 'version_minor': 0}, 'text/plain': 'VBox()'}, raw=True)"),
        nbformat.v4.new_code_cell("1 / 0"),
        nbformat.v4.new_code_cell("print('never runs')"),
    ]
    nbformat.write(nb, server.root / "zz_broken.ipynb")
    page.open("zz_broken.ipynb")
    with pytest.raises(LabError, match=r"kernel error in zz_broken.ipynb cell 1 \('1 / 0'\): ZeroDivisionError"):
        page.run_all()
    with pytest.raises(LabError, match=r"cell 0: 'Error displaying widget"):
        page.check_widgets(timeout=5)
    assert Path(ROOT / "tests" / "artifacts").is_dir()


def test_a_missing_widget_extension_fails_with_a_clear_message(lab, tmp_path):
    """A lab without the ipywidgets front end: the page check and the widget check both say so."""
    import nbformat

    _, ctx = lab
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider(value=3)")]
    nbformat.write(nb, tmp_path / "slider.ipynb")
    with jupyterlab_server([tmp_path / "slider.ipynb"], tmp_path / "lab",
                           disabled_extensions=[WIDGET_EXTENSION]) as broken:
        page = LabPage(ctx, broken, name="no-widget-extension")
        try:
            with pytest.raises(LabError, match=r"ipywidgets JupyterLab extension .* is missing or disabled"):
                page.open("slider.ipynb")
            page.open("slider.ipynb", check_extension=False)
            page.run_all()
            with pytest.raises(LabError, match=r"cell 0: the widget shows as text/plain \('IntSlider\(value=3\)'\)"):
                page.check_widgets(timeout=5)
        finally:
            page.page.close()
    assert not page.external_requests, f"the page tried to reach the network: {page.external_requests[:5]}"
