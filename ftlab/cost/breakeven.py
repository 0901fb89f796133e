"""Inference break-even: when does a self-hosted GPU beat the API?"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ftlab.cost.catalog import HOURS_PER_MONTH, Catalog, _cat
from ftlab.errors import ParameterError
from ftlab.params import check_param

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["BreakEven", "api_cost_per_request", "break_even", "monthly_costs", "plot_break_even"]


def api_cost_per_request(model: str, in_tokens: int, out_tokens: int, *, data_sharing: bool = False,
                         catalog: Catalog | None = None) -> float:
    """USD per request on a fine-tuned API model, with OpenAI's data-sharing discount if asked.

    Example: gpt-4.1-mini, 500 in / 200 out = (500 × 0.80 + 200 × 3.20) / 1e6 = $0.00104 (half with data sharing).
    """
    cat = _cat(catalog)
    m = cat.entry(model)
    p_in, p_out = m.get("inference_in_usd_per_1m"), m.get("inference_out_usd_per_1m")
    if p_in is None or p_out is None:
        priced = [x["id"] for x in cat.models if x["fine_tunable"] and x.get("inference_in_usd_per_1m") is not None]
        raise ParameterError(f"{m['id']} has no inference price in the catalog; models with one: {', '.join(priced)}")
    check_param("in_tokens", in_tokens, int, min=0)
    check_param("out_tokens", out_tokens, int, min=0)
    cost = (in_tokens * p_in + out_tokens * p_out) / 1_000_000
    if data_sharing:
        discount = cat.providers[m["provider"]].get("data_sharing_inference_discount")
        if discount is None:
            raise ParameterError(f"data_sharing applies to OpenAI models only; {m['id']} is on {m['provider']}")
        cost *= 1 - discount
    return cost


@dataclass
class BreakEven:
    """The monthly request volume above which one self-hosted GPU is cheaper than the API (None: never)."""

    model: str
    gpu: str
    data_sharing: bool
    api_usd_per_request: float
    gpu_usd_per_month: float
    capacity_requests_per_month: float
    requests_per_month: float | None

    def explain(self) -> str:
        if self.requests_per_month is None:
            return (f"Self-hosting on {self.gpu} never beats {self.model}"
                    f"{' with data sharing' if self.data_sharing else ''}: one GPU (${self.gpu_usd_per_month:,.0f}/month) "
                    f"serves at most {self.capacity_requests_per_month:,.0f} requests/month, which cost only "
                    f"${self.api_usd_per_request * self.capacity_requests_per_month:,.0f} on the API.")
        return (f"From {self.requests_per_month:,.0f} requests/month, one {self.gpu} (${self.gpu_usd_per_month:,.0f}/month) "
                f"beats {self.model}{' with data sharing' if self.data_sharing else ''} at "
                f"${self.api_usd_per_request * 1000:.2f} per 1,000 requests. Past one GPU's capacity "
                f"({self.capacity_requests_per_month:,.0f}/month) each added GPU pays off again once it is busy enough.")


def _self_hosted(gpu: str, out_tokens: int, utilization: float, cat: Catalog, model_size: str) -> tuple[float, float]:
    rate = cat.gpu(gpu)
    serve = cat.serving_for(rate["hardware"], model_size)
    monthly = rate["usd_per_hour"] * HOURS_PER_MONTH
    capacity = serve["output_tokens_per_s"] / max(out_tokens, 1) * 3600 * HOURS_PER_MONTH * utilization
    return monthly, capacity


def break_even(model: str = "gpt-4.1-mini", gpu: str = "a100-40gb-on-demand", *, in_tokens: int = 500,
               out_tokens: int = 200, data_sharing: bool = False, utilization: float = 0.6,
               model_size: str = "8B", catalog: Catalog | None = None) -> BreakEven:
    """Where self-hosting starts to pay: monthly requests × API price per request = GPU cost per month.

    Self-hosted cost is one always-on GPU (``usd_per_hour`` × 730 h), which serves at most
    ``output_tokens_per_s`` ÷ ``out_tokens`` × seconds per month × ``utilization`` requests. If the
    break-even volume exceeds that capacity, adding GPUs never catches up (each costs as much as the
    API traffic it serves), so the answer is ``None``.
    """
    cat = _cat(catalog)
    check_param("utilization", utilization, float, min=0.01, max=1.0)
    per_req = api_cost_per_request(model, in_tokens, out_tokens, data_sharing=data_sharing, catalog=cat)
    monthly, capacity = _self_hosted(gpu, out_tokens, utilization, cat, model_size)
    volume = monthly / per_req if per_req > 0 else math.inf
    return BreakEven(cat.entry(model)["id"], gpu, data_sharing, per_req, monthly, capacity,
                     volume if volume <= capacity else None)


def monthly_costs(requests: Sequence[float], model: str = "gpt-4.1-mini", gpu: str = "a100-40gb-on-demand", *,
                  in_tokens: int = 500, out_tokens: int = 200, utilization: float = 0.6, model_size: str = "8B",
                  catalog: Catalog | None = None) -> dict[str, list[float]]:
    """Monthly USD at each volume: the API, the API with data sharing (OpenAI only) and self-hosted GPUs."""
    cat = _cat(catalog)
    per_req = api_cost_per_request(model, in_tokens, out_tokens, catalog=cat)
    monthly, capacity = _self_hosted(gpu, out_tokens, utilization, cat, model_size)
    out = {"api": [r * per_req for r in requests],
           "self_hosted": [max(1, math.ceil(r / capacity)) * monthly for r in requests]}
    discount = cat.providers[cat.entry(model)["provider"]].get("data_sharing_inference_discount")
    if discount is not None:
        out["api_data_sharing"] = [r * per_req * (1 - discount) for r in requests]
    return out


def plot_break_even(model: str = "gpt-4.1-mini", gpu: str = "a100-40gb-on-demand", *, in_tokens: int = 500,
                    out_tokens: int = 200, utilization: float = 0.6, max_requests: float | None = None,
                    catalog: Catalog | None = None, ax: Axes | None = None) -> Figure:
    """Plot monthly cost against monthly requests: API, API with data sharing, self-hosted GPUs."""
    import matplotlib.pyplot as plt

    cat = _cat(catalog)
    kw = {"in_tokens": in_tokens, "out_tokens": out_tokens, "utilization": utilization, "catalog": cat}
    plain = break_even(model, gpu, **kw)
    shared = None
    if cat.providers[cat.entry(model)["provider"]].get("data_sharing_inference_discount") is not None:
        shared = break_even(model, gpu, data_sharing=True, **kw)
    top = max_requests or 3 * max(plain.capacity_requests_per_month, plain.requests_per_month or 0)
    xs = [top * i / 400 for i in range(401)]
    ys = monthly_costs(xs, model, gpu, in_tokens=in_tokens, out_tokens=out_tokens, utilization=utilization, catalog=cat)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    ax.plot(xs, ys["api"], label=f"{model} API")
    if "api_data_sharing" in ys:
        ax.plot(xs, ys["api_data_sharing"], "--", label=f"{model} API, data sharing (-50%)")
    ax.step(xs, ys["self_hosted"], where="post", label=f"self-hosted {gpu}")
    for be, style in ((plain, "o"), (shared, "s")):
        if be and be.requests_per_month is not None:
            ax.plot([be.requests_per_month], [be.gpu_usd_per_month], style, color="black")
            ax.annotate(f"{be.requests_per_month / 1e6:.2f}M/month", (be.requests_per_month, be.gpu_usd_per_month),
                        textcoords="offset points", xytext=(6, -12))
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}M"))
    ax.set_xlabel(f"requests per month ({in_tokens} in / {out_tokens} out tokens each)")
    ax.set_ylabel("USD per month")
    ax.set_title("Inference break-even: API vs one self-hosted GPU")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


