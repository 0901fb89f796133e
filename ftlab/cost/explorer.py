"""The live widget of notebook 02: sliders that update the cost table and the break-even."""

from __future__ import annotations

import datetime as _dt
from html import escape
from typing import TYPE_CHECKING

from ftlab.cost.breakeven import break_even, plot_break_even
from ftlab.cost.catalog import Catalog, _cat
from ftlab.cost.tables import cost_table_html
from ftlab.cost.training import training_costs, training_tokens
from ftlab.errors import ParameterError

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["cost_explorer"]


def cost_explorer(examples: int = 5_000, tokens_per_example: int = 300, epochs: int = 3, model: str = "gpt-4.1-mini",
                  *, data_sharing: bool = False, gpu: str = "a100-40gb-on-demand", as_of: str | _dt.date | None = None,
                  catalog: Catalog | None = None) -> ipywidgets.VBox:
    """Sliders (examples, tokens per example, epochs) and a model menu that update the cost table and the
    break-even plot live. Every control carries a stable CSS class (``ftlab-examples``, ``ftlab-epochs``,
    ``ftlab-model``, ``ftlab-cost-table``, ``ftlab-breakeven-plot``...) for browser tests.

    Returns the ``VBox``; its ``controls`` dict holds the widgets and ``refresh()`` redraws.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    cat = _cat(catalog)
    training_tokens(examples, tokens_per_example, epochs)  # validate the start values
    priced = [m["id"] for m in cat.models if m["fine_tunable"] and m.get("inference_in_usd_per_1m") is not None]
    cat.entry(model)
    if model not in priced:
        raise ParameterError(f"model {model!r} has no inference price for the break-even; choose one of {', '.join(priced)}")
    style = {"description_width": "150px"}
    layout = w.Layout(width="520px")
    controls = {
        "examples": w.IntSlider(value=examples, min=10, max=max(50_000, examples), step=10, description="examples",
                                style=style, layout=layout, continuous_update=False),
        "tokens_per_example": w.IntSlider(value=tokens_per_example, min=10, max=max(4_000, tokens_per_example), step=10,
                                          description="tokens per example", style=style, layout=layout,
                                          continuous_update=False),
        "epochs": w.IntSlider(value=epochs, min=1, max=max(10, epochs), step=1, description="epochs", style=style,
                              layout=layout, continuous_update=False),
        "model": w.Dropdown(options=priced, value=model, description="model (break-even)", style=style, layout=layout),
        "data_sharing": w.Checkbox(value=data_sharing, description="OpenAI data sharing (-50% inference)", indent=False),
    }
    for name, c in controls.items():
        c.add_class(f"ftlab-{name.replace('_', '-')}")
    tokens_label = w.HTML()
    tokens_label.add_class("ftlab-training-tokens")
    table = w.HTML()
    table.add_class("ftlab-cost-table")
    verdict = w.HTML()
    verdict.add_class("ftlab-breakeven")
    plot = w.Output()
    plot.add_class("ftlab-breakeven-plot")

    def refresh(*_):
        v = {k: c.value for k, c in controls.items()}
        tokens = training_tokens(v["examples"], v["tokens_per_example"], v["epochs"])
        tokens_label.value = (f"<b>{v['examples']:,} × {v['tokens_per_example']:,} × {v['epochs']} = "
                              f"<span class='ftlab-training-tokens-value'>{tokens:,}</span> training tokens</b>")
        table.value = cost_table_html(tokens, training_costs(tokens, as_of=as_of, catalog=cat), highlight=v["model"])
        be = break_even(v["model"], gpu, data_sharing=v["data_sharing"], catalog=cat)
        verdict.value = f"<p class='ftlab-breakeven-text'>{escape(be.explain())}</p>"
        with plot:
            plot.clear_output(wait=True)
            fig = plot_break_even(v["model"], gpu, catalog=cat)
            display(fig)
            plt.close(fig)

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    box = w.VBox([*controls.values(), tokens_label, table, verdict, plot])
    box.add_class("ftlab-cost-explorer")
    box.controls = controls
    box.refresh = refresh
    box.outputs = {"tokens": tokens_label, "table": table, "breakeven": verdict, "plot": plot}
    return box


