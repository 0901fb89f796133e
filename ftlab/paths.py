"""Choose your fine-tuning path: the OpenAI API, Hugging Face + QLoRA, or a cloud-managed platform.

Taught in ``notebooks/01_choose_your_path.ipynb``. ``choose_path`` is a plain function over the
factors of the articles' "pick your path" table (``PICK_YOUR_PATH``), after two pre-checks: should you
fine-tune at all (prompt engineering first), and is it behaviour or knowledge you want to teach::

    >>> choose_path(as_of="2026-04-01").path      # before OpenAI's wind-down: no GPU ops, data may leave
    'openai'
    >>> rec = choose_path(as_of="2026-12-02")     # a new organisation: OpenAI closed to it on 2026-05-07
    >>> rec.path, rec.platform.split(":")[0]
    ('cloud_managed', 'Azure OpenAI in Microsoft Foundry')
    >>> choose_path(as_of="2026-12-02", openai_status="active").path   # still open to it until 2027-01-06
    'openai'
    >>> choose_path(data_sensitivity="own_hardware").path
    'hf_qlora'
    >>> choose_path(goal="knowledge").verdict     # facts that change belong in RAG or tools
    'rag_or_tools'

``path_form()`` is the same function behind an ipywidgets form. The OpenAI path follows the dates
in the price catalog (``ftlab.cost.availability``): the answer depends on ``as_of`` (default today) and
on your organisation's ``openai_status``. Prices in the reasons come from the catalog, not from here.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from html import escape
from typing import Any

from ftlab import cost
from ftlab.cost import PATH_LABELS
from ftlab.errors import ParameterError
from ftlab.params import check_param
from ftlab.show import Table, table

__all__ = ["AZURE_ROUTE", "BEHAVIOUR_NOT_KNOWLEDGE", "ORG_STATUS", "PICK_YOUR_PATH", "QUESTIONS",
           "SEED_RUN_TOKENS", "SKU_STORY", "Answers", "Recommendation", "RunnerUp", "choose_path",
           "looks_like_knowledge", "openai_availability", "path_form", "pick_your_path_html", "pick_your_path_rows",
           "pick_your_path_table"]


SEED_RUN_TOKENS = 4_500_000  # the articles' worked example: 5,000 examples × 300 tokens × 3 epochs


def _usd(entry: str, *, provider: bool = False) -> float:
    """A price from the catalog: the training price per 1M tokens (OpenAI/Together) or per GPU-hour."""
    cat = cost.load_catalog()
    if any(g["id"] == entry for g in cat.gpus):
        return cat.gpu(entry)["usd_per_hour"]
    m = cat.entry(entry, fine_tune=False)
    return (m.get("provider_price") or m)["training_usd_per_1m"] if provider else m["training_usd_per_1m"]


def _training_cost_row() -> tuple[str, str, str, str]:
    """The table's "Training cost" row, its figures printed from the catalog (article 001's prices)."""
    lo, hi = _usd("gpt-4.1-mini"), _usd("gpt-4.1")
    spot = cost.load_catalog().gpu("a100-40gb-spot").get("range_usd_per_hour") or [_usd("a100-40gb-spot")] * 2
    return ("Training cost", f"~${lo:.2f}–${hi:.2f}/M tokens", f"GPU cost (A100 spot ≈${spot[0]:.2f}–{spot[1]:.2f}/hr)",
            "Per hour or per token")


# Article 001, "Pick your path before writing a line of training code" (article 001; article 000 has no table).
# The training-cost row is printed from the price catalog (see pick_your_path_rows), not typed here.
PICK_YOUR_PATH: list[tuple[str, str, str, str]] = [
    ("Factor", "OpenAI API", "Hugging Face + QLoRA", "Cloud-Managed"),
    ("Model ownership", "No — OpenAI only", "Yes — run anywhere", "Depends on provider"),
    ("Setup complexity", "Low — API calls only", "High — GPU, libs, monitoring", "Medium — cloud console"),
    ("Training cost", "(from the catalog)", "(from the catalog)", "Per hour or per token"),
    ("Inference control", "None — OpenAI endpoint", "Full — deploy anywhere", "Provider endpoint"),
    ("Best for", "Fastest path, closed infra", "Open models, max control", "Open model, no GPU ops"),
    ("Data sensitivity", "Data leaves to OpenAI", "Stays on your hardware", "Stays in your VPC"),
]

SKU_STORY = (
    "A team fine-tuned Llama 3 8B on 3,000 customer support transcripts. Accuracy on their target eval jumped "
    "from 62% to 89% and they shipped it. Three days later the model was hallucinating product SKU numbers it "
    "had memorized from training data, SKUs that had since changed. The fix: product catalog lookup as a tool, "
    "prompt engineering on the base model, and RAG instead of fine-tuning. Root cause: fine-tuning on knowledge "
    "that should have stayed in a database. (article 001)"
)
BEHAVIOUR_NOT_KNOWLEDGE = (
    "Fine-tune for behaviour (format, tone, task structure), not knowledge: if the model needs to 'know' facts "
    "that change (product catalog, prices, policies), use RAG or tool calling instead."
)

# What each answer may be: (question shown in the form, {value: label}).
QUESTIONS: dict[str, tuple[str, dict[Any, str]]] = {
    "goal": ("What should fine-tuning change?", {
        "behaviour": "behaviour: format, tone, task structure",
        "knowledge": "knowledge: facts the model should 'know'",
        "both": "both: a behaviour that uses changing facts",
    }),
    "tried_prompting": ("Measured a prompt-engineered baseline?", {True: "yes", False: "not yet"}),
    "examples_available": ("Labelled examples you have", {}),
    "own_weights": ("Must you own the weights (run anywhere)?", {False: "no", True: "yes"}),
    "gpu_ops": ("GPU-ops capacity (setup complexity you can take)", {
        "none": "none: API calls only",
        "some": "some: a cloud console is fine",
        "team": "a team that runs GPUs, libraries, monitoring",
    }),
    "cost_priority": ("Training cost", {
        "lowest": "lowest possible",
        "balanced": "balanced",
        "flexible": "not a concern",
    }),
    "inference_control": ("Inference control", {
        "provider_endpoint": "a provider's endpoint is fine",
        "full": "full: deploy anywhere, own the serving stack",
    }),
    "data_sensitivity": ("Data sensitivity", {
        "can_leave": "data may leave to OpenAI",
        "vpc": "must stay in our cloud VPC",
        "own_hardware": "must stay on our own hardware",
    }),
    "cloud": ("Cloud platform you are already on", {
        "none": "none",
        "gcp": "Google Cloud",
        "aws": "AWS",
        "azure": "Azure",
    }),
    "openai_status": ("Your organisation and OpenAI fine-tuning", {
        "never_fine_tuned": "never fine-tuned on OpenAI",
        "active": "active: fine-tuned models in use (inference in the last 60 days)",
        "inactive": "inactive: fine-tuned before, no fine-tuned-model inference in 60 days",
    }),
}
ORG_STATUS = {"never_fine_tuned": "new", "active": "active", "inactive": "inactive"}  # → ftlab.cost.ORG_STATUSES
AZURE_ROUTE = "Azure OpenAI in Microsoft Foundry"
_CLOUD_PLATFORM = {"gcp": "Google Vertex AI", "aws": "AWS Bedrock", "azure": "Microsoft Foundry (Azure AI Studio)",
                   "none": "Together AI"}
_TIE_ORDER = ("openai", "cloud_managed", "hf_qlora")  # simplest first: "Start with OpenAI fine-tuning for simplicity"
_KNOWLEDGE_WORDS = re.compile(
    r"\b(sku|skus|catalog(?:ue)?s?|prices?|pricing|polic(?:y|ies)|inventory|stock levels?|in stock|"
    r"facts?|latest|current|up[- ]to[- ]date|news|schedules?|product (?:specs?|details)|knowledge)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Answers:
    """The learner's answers. Every field has a default, so ``Answers(gpu_ops="team")`` is enough."""

    goal: str = "behaviour"
    tried_prompting: bool = True
    examples_available: int = 1_000
    own_weights: bool = False
    gpu_ops: str = "none"
    cost_priority: str = "balanced"
    inference_control: str = "provider_endpoint"
    data_sensitivity: str = "can_leave"
    cloud: str = "none"
    learn_what: str = ""
    openai_status: str = "never_fine_tuned"
    as_of: str = ""  # YYYY-MM-DD the answer is for; "" = today

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "as_of":
                check_param(f.name, value, str)
                if value:
                    cost.parse_date(value, "as_of")
            elif f.name == "examples_available":
                check_param(f.name, value, int, min=0)
            elif f.name == "learn_what":
                check_param(f.name, value, str)
            elif f.name in ("tried_prompting", "own_weights"):
                check_param(f.name, value, bool)
            else:
                check_param(f.name, value, str, choices=list(QUESTIONS[f.name][1]))


@dataclass
class RunnerUp:
    path: str
    label: str
    score: float
    why_not: str


@dataclass
class Recommendation:
    """What ``choose_path`` returns. Shows itself as HTML in a notebook."""

    path: str
    label: str
    platform: str
    verdict: str  # fine_tune | prompt_first | rag_or_tools
    reasons: list[str]
    runners_up: list[RunnerUp]
    what_would_change: list[str]
    tradeoffs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    openai_availability: dict[str, Any] = field(default_factory=dict)  # ftlab.cost.availability on as_of

    @property
    def headline(self) -> str:
        if self.verdict == "rag_or_tools":
            return f"Don't fine-tune for facts: use RAG or tools. If you later fine-tune a behaviour: {self.label} ({self.platform})."
        if self.verdict == "prompt_first":
            return f"Prompt-engineer a baseline first. When you do fine-tune: {self.label} ({self.platform})."
        return f"Recommended path: {self.label} ({self.platform})."

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        lines = [self.headline]
        lines += [f"  ! {w}" for w in self.warnings]
        lines += [f"  + {r}" for r in self.reasons]
        lines += [f"  - {r}" for r in self.tradeoffs]
        lines += [f"  runner-up: {r.label} ({r.score:g}): {r.why_not}" for r in self.runners_up]
        lines += [f"  would change: {c}" for c in self.what_would_change]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        def ul(items: list[str]) -> str:
            return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>" if items else "<p>—</p>"

        warn = "".join(f"<p class='ftlab-warning' style='color:#9a5b00'>⚠ {escape(w)}</p>" for w in self.warnings)
        runners = ul([f"{r.label} (score {r.score:g}): {r.why_not}" for r in self.runners_up])
        return (
            f"<div class='ftlab-recommendation-card' data-path='{self.path}' data-verdict='{self.verdict}'>"
            f"<h4 class='ftlab-recommended-path'>{escape(self.headline)}</h4>{warn}"
            f"<b>Why</b>{ul(self.reasons)}"
            + (f"<b>Trade-offs to plan for</b>{ul(self.tradeoffs)}" if self.tradeoffs else "")
            + f"<b>Runners-up</b>{runners}"
            f"<b>What would change the answer</b>{ul(self.what_would_change)}</div>"
        )


def looks_like_knowledge(text: str) -> list[str]:
    """Words in a goal description that point at facts rather than behaviour.

    Example: ``looks_like_knowledge("answer with current prices and SKUs")`` returns ``["current", "prices", "SKUs"]``.
    """
    return [m.group(0) for m in _KNOWLEDGE_WORDS.finditer(text or "")]


def _score(a: Answers) -> tuple[dict[str, float], dict[str, list[tuple[float, str]]], dict[str, str]]:
    """Score each path on the table's factors. Returns (scores, (points, reason) per path, exclusions)."""
    s = dict.fromkeys(_TIE_ORDER, 0.0)
    why: dict[str, list[tuple[float, str]]] = {p: [] for p in _TIE_ORDER}
    out: dict[str, str] = {}

    def add(path: str, points: float, reason: str) -> None:
        s[path] += points
        why[path].append((points, reason))

    # Model ownership
    if a.own_weights:
        out["openai"] = "you need the weights, and OpenAI keeps them (model ownership: 'No — OpenAI only')"
        add("hf_qlora", 3, "you need the weights: Hugging Face + QLoRA gives you the adapter and the model to run anywhere")
        add("cloud_managed", 0, "weights: 'depends on provider' (check that yours lets you export the tuned model)")
    else:
        add("openai", 1, "you don't need the weights, so OpenAI keeping them costs you nothing")
    # Setup complexity / GPU-ops capacity
    if a.gpu_ops == "none":
        add("openai", 2, "setup is low: API calls only, no GPU operations")
        add("cloud_managed", 1, "setup is medium (a cloud console) and needs no GPU operations")
        add("hf_qlora", -3, "setup is high (GPU, libraries, monitoring) and you have no GPU-ops capacity")
    elif a.gpu_ops == "some":
        add("openai", 1, "setup is low: API calls only")
        add("cloud_managed", 1, "a cloud console is within your ops capacity")
        add("hf_qlora", -1, "setup is high (GPU, libraries, monitoring) for limited GPU-ops capacity")
    else:
        add("hf_qlora", 2, "you have a team that can run GPUs, libraries and monitoring: full control is affordable")
    # Training cost
    if a.cost_priority == "lowest":
        spot = cost.cost_for("a100-40gb-spot", SEED_RUN_TOKENS).training_cost_usd
        mini, listed = _usd("gpt-4.1-mini"), _usd("gpt-4.1-mini", provider=True)
        add("hf_qlora", 2, f"cheapest training: ${spot:.2f} on an A100 spot for the articles' 4.5M-token example")
        add("openai", 1, f"cheap training on gpt-4.1-mini: ${mini * 4.5:.2f} for the articles' 4.5M-token example at the "
                         f"article's ${mini:.2f}/M (OpenAI's list price, ${listed:.2f}/M, would make it ${listed * 4.5:.2f})")
        add("cloud_managed", -1, "managed training typically costs 2-3x self-managed GPU training (article 000)")
    elif a.cost_priority == "flexible":
        add("cloud_managed", 1, "training cost is not a concern, so the managed premium is fine")
    # Inference control
    if a.inference_control == "full":
        out["openai"] = out.get("openai") or "you need full inference control, and OpenAI serves only from its own endpoint"
        add("hf_qlora", 2, "full inference control: deploy anywhere (merge the adapter, GGUF/vLLM)")
        out["cloud_managed"] = out.get("cloud_managed") or (
            "you need full inference control, and managed platforms serve from the provider's endpoint")
    else:
        add("openai", 1, "a provider endpoint is fine for inference")
        add("cloud_managed", 1, "a provider endpoint is fine for inference")
    # Data sensitivity
    if a.data_sensitivity == "can_leave":
        add("openai", 1, "your data may leave to OpenAI")
    elif a.data_sensitivity == "vpc":
        out["openai"] = out.get("openai") or "your data must stay in your VPC, and with OpenAI it leaves to OpenAI"
        add("cloud_managed", 2, "data stays in your cloud VPC")
        add("hf_qlora", 1, "data stays on hardware you control")
    else:
        out["openai"] = out.get("openai") or "your data must stay on your own hardware, and with OpenAI it leaves to OpenAI"
        out["cloud_managed"] = "your data must stay on your own hardware; managed platforms keep it in your VPC, not on your hardware"
        add("hf_qlora", 2, "data stays on your own hardware")
    # Cloud you are already on
    if a.cloud != "none":
        add("cloud_managed", 2, f"you are already on {QUESTIONS['cloud'][1][a.cloud]}: {_CLOUD_PLATFORM[a.cloud]} integrates tightly")
    # The dates: OpenAI's self-serve wind-down (the price catalog's availability, on as_of, for your organisation)
    av = openai_availability(a)
    if not av.available and "openai" not in out:
        out["openai"] = f"{av.reason} ({_cite(av)})"
        if _azure_route(a):
            add("cloud_managed", 2, f"{AZURE_ROUTE} still fine-tunes the same models ({_azure_models()}): the route "
                                    f"OpenAI's wind-down leaves open, {_azure_regions()}")
    elif av.status == "closing" and "openai" not in out:
        add("openai", -1, f"OpenAI's self-serve fine-tuning closes to everyone on {av.date}: no retraining after that "
                          f"({_cite(av)})")
    return s, why, out


def openai_availability(a: Answers) -> cost.Availability:
    """OpenAI self-serve fine-tuning (gpt-4.1-mini, the articles' default) for ``a.openai_status`` on ``a.as_of``."""
    return cost.availability("gpt-4.1-mini", a.as_of or None, org_status=ORG_STATUS[a.openai_status])


def _cite(av: cost.Availability) -> str:
    return f"{av.confidence}: {av.source.split(' ')[0]}, checked {av.source_as_of}"


def _azure_route(a: Answers) -> bool:
    """Azure OpenAI is the answer when OpenAI itself was: nothing but the dates rules OpenAI out."""
    return (not a.own_weights and a.inference_control != "full" and a.data_sensitivity == "can_leave"
            and a.cloud in ("none", "azure"))


def _azure_models() -> str:
    cat = cost.load_catalog()
    return ", ".join(m["model"].split(" on ")[0] for m in cat.models if m["id"].startswith("azure-openai-"))


def _azure_regions(model: str = "azure-openai-gpt-4.1-mini") -> str:
    av = cost.load_catalog().entry(model)["availability"]
    return (f"{' and '.join(av['regions_standard'])} with data residency, or Global training from "
            f"{len(av['regions_global'])} regions (Microsoft's docs, checked {av['as_of']})")


def _winner(scores: dict[str, float], excluded: dict[str, str]) -> str:
    open_paths = [p for p in _TIE_ORDER if p not in excluded]
    return max(open_paths, key=lambda p: (scores[p], -_TIE_ORDER.index(p)))


def _platform(path: str, a: Answers) -> str:
    if path == "openai":
        return "start with gpt-4.1-mini; move to gpt-4.1 only if mini falls short on your eval set"
    if path == "hf_qlora":
        return "Llama 3.1 8B + QLoRA, ≈16 GB VRAM: an RTX 4090 or an A100"
    if _azure_route(a) and not openai_availability(a).available:
        return (f"{AZURE_ROUTE}: fine-tune gpt-4.1-mini (2025-04-14) there, the model the OpenAI path would "
                "have used, with the same openai SDK (AzureOpenAI client)")
    platform = _CLOUD_PLATFORM[a.cloud]
    if a.cloud == "azure" and not a.own_weights:
        platform += ", which also tunes GPT-4.1-nano inside your Azure tenancy"
    return platform


def _describe(name: str, value: Any) -> str:
    if name == "as_of":
        return f"as_of = {value!r} (the answer on that date)"
    label = QUESTIONS[name][1].get(value, value)
    return f"{name} = {value!r} ({label})"


def _dates_to_try(a: Answers) -> list[str]:
    """The dates at which OpenAI's wind-down changes something: the day before it starts, and each stage."""
    import datetime as dt

    stages = [s["date"] for s in cost.wind_down()["stages"]]
    before = (dt.date.fromisoformat(stages[0]) - dt.timedelta(days=1)).isoformat()
    return [d for d in [before, *stages] if d != a.as_of]


def choose_path(answers: Answers | dict[str, Any] | None = None, **overrides: Any) -> Recommendation:
    """Recommend a fine-tuning path from the answers, with reasons, runners-up and what would change it.

    ``answers`` is an ``Answers``, a dict of its fields, or None for the defaults; keyword overrides
    win (``choose_path(gpu_ops="team")``). Unknown names or values raise a one-line ``ParameterError``.
    """
    base = asdict(answers) if isinstance(answers, Answers) else dict(answers or {})
    base.update(overrides)
    unknown = sorted(set(base) - {f.name for f in fields(Answers)})
    if unknown:
        raise ParameterError(f"unknown answer {unknown[0]!r}; valid answers: {', '.join(f.name for f in fields(Answers))}")
    a = Answers(**base)

    scores, why, excluded = _score(a)
    path = _winner(scores, excluded)
    reasons = [r for pts, r in why[path] if pts >= 0]
    tradeoffs = [r for pts, r in why[path] if pts < 0]
    warnings: list[str] = []

    # Pre-check 1: behaviour vs knowledge.
    verdict = "fine_tune"
    hits = looks_like_knowledge(a.learn_what)
    if a.goal == "knowledge":
        verdict = "rag_or_tools"
        warnings.append(f"{BEHAVIOUR_NOT_KNOWLEDGE} {SKU_STORY}")
    elif a.goal == "both":
        warnings.append("Split the job: fine-tune the behaviour, and serve the changing facts through RAG or a tool "
                        f"lookup at request time. {SKU_STORY}")
    elif hits:
        warnings.append(f"Your description mentions {', '.join(repr(h) for h in dict.fromkeys(hits))}: if those are facts "
                        f"that change, keep them out of the weights. {BEHAVIOUR_NOT_KNOWLEDGE}")
    # Pre-check 2: should you fine-tune at all?
    if a.examples_available < 10:
        warnings.append(f"{a.examples_available} examples is too few to fine-tune: OpenAI requires at least 10, and the "
                        "articles' runs use 3,000–5,000. Prompt-engineer (few-shot) while you collect data.")
        if verdict == "fine_tune":
            verdict = "prompt_first"
    elif a.examples_available < 50:
        warnings.append(f"Only {a.examples_available} examples: OpenAI's guide sees clear gains from about 50–100; "
                        "measure against a few-shot prompt before paying for training.")
    if not a.tried_prompting:
        warnings.append("Prompt engineering first: build a prompt-engineered baseline and an evaluation set. Fine-tune "
                        "only if the baseline can't reach the format, tone or consistency you need; then compare the "
                        "fine-tuned model against that baseline on the same set (article 001).")
        if verdict == "fine_tune":
            verdict = "prompt_first"

    runners_up = []
    for p in sorted((p for p in _TIE_ORDER if p != path), key=lambda p: (p in excluded, -scores[p], _TIE_ORDER.index(p))):
        if p in excluded:
            why_not = f"ruled out: {excluded[p]}"
        else:
            against = [r for pts, r in why[p] if pts < 0]
            if scores[p] == scores[path]:
                why_not = f"ties at {scores[p]:g}; the simpler path wins a tie (article 000: start with OpenAI for simplicity)"
            else:
                why_not = f"scores {scores[p]:g} vs {scores[path]:g}" + (f"; {against[0]}" if against else "")
        runners_up.append(RunnerUp(p, PATH_LABELS[p], scores[p], why_not))

    changes: list[str] = []
    path_factors = ("own_weights", "gpu_ops", "cost_priority", "inference_control", "data_sensitivity", "cloud",
                    "openai_status", "as_of")
    for name in path_factors:
        for value in (_dates_to_try(a) if name == "as_of" else QUESTIONS[name][1]):
            if value == getattr(a, name):
                continue
            alt = replace(a, **{name: value})
            s2, _, ex2 = _score(alt)
            p2 = _winner(s2, ex2)
            if p2 != path:
                changes.append(f"{_describe(name, value)} → {PATH_LABELS[p2]} ({_platform(p2, alt)})")
    if verdict == "rag_or_tools":
        changes.insert(0, "goal = 'behaviour' (teach format, tone or task structure; facts come from RAG or tools) → fine-tune")
    elif verdict == "prompt_first":
        if not a.tried_prompting:
            changes.insert(0, "tried_prompting = True, with the baseline falling short of what you need → fine-tune")
        if a.examples_available < 10:
            changes.insert(0, "examples_available ≥ 10 (better: hundreds to thousands) → fine-tune")
    if not changes:
        changes.append("no single answer changes this recommendation")

    av = openai_availability(a)
    if av.status == "closing" and path == "openai":
        warnings.append(f"{av.reason}. Fine-tuned models keep serving until their base model retires "
                        f"({av.retires_on}); plan retraining on {AZURE_ROUTE} or an open model ({_cite(av)}).")
    return Recommendation(path, PATH_LABELS[path], _platform(path, a), verdict, reasons, runners_up, changes,
                          tradeoffs, warnings, scores, excluded, asdict(a), av.to_json())


def pick_your_path_rows() -> list[tuple[str, str, str, str]]:
    """Article 001's table with the training-cost row filled from the price catalog."""
    return [_training_cost_row() if r[0] == "Training cost" else r for r in PICK_YOUR_PATH]


def pick_your_path_table() -> Table:
    """Article 001's "pick your path" table (its training-cost figures printed from the catalog), for ``display``."""
    head, *rows = pick_your_path_rows()
    return table(rows, list(head), css_class="ftlab-pick-your-path")


def pick_your_path_html() -> str:
    """Article 001's "pick your path" table as HTML (:func:`pick_your_path_table`)."""
    return pick_your_path_table().to_html()


def path_form(answers: Answers | dict[str, Any] | None = None):
    """An ipywidgets form over ``choose_path``: change an answer, the recommendation updates.

    Each control has the CSS class ``ftlab-<answer>`` (``ftlab-gpu-ops``, ``ftlab-data-sensitivity``...)
    and the recommendation lives in ``ftlab-recommendation``, for browser tests. Returns the ``VBox``;
    its ``controls`` dict holds the widgets, ``result()`` the current ``Recommendation``.
    """
    import ipywidgets as w

    start = answers if isinstance(answers, Answers) else Answers(**(answers or {}))
    style = {"description_width": "300px"}
    layout = w.Layout(width="720px")
    controls: dict[str, Any] = {}
    for f in fields(Answers):
        name, value = f.name, getattr(start, f.name)
        question, options = QUESTIONS.get(name, ("What should the model learn? (free text)", {}))
        if name == "examples_available":
            c = w.BoundedIntText(value=value, min=0, max=10_000_000, description=question, style=style, layout=layout)
        elif name == "as_of":
            c = w.Text(value=value, description="Date of the answer (YYYY-MM-DD; empty = today)", placeholder="today",
                       style=style, layout=layout, continuous_update=False)
        elif name == "learn_what":
            c = w.Text(value=value, description=question, placeholder="e.g. reply in our ticket format",
                       style=style, layout=layout, continuous_update=False)
        else:
            c = w.Dropdown(options=[(label, v) for v, label in options.items()], value=value, description=question,
                           style=style, layout=layout)
        c.add_class(f"ftlab-{name.replace('_', '-')}")
        controls[name] = c
    out = w.HTML()
    out.add_class("ftlab-recommendation")
    state: dict[str, Recommendation] = {}

    def refresh(*_):
        try:
            rec = choose_path({k: c.value for k, c in controls.items()})
        except ParameterError as exc:
            out.value = f"<p class='ftlab-error' style='color:#b00'>{escape(str(exc))}</p>"
            return
        state["rec"] = rec
        out.value = rec._repr_html_()

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    box = w.VBox([w.HTML("<b>Answer the questions; the recommendation updates.</b>"), *controls.values(), out])
    box.add_class("ftlab-path-form")
    box.controls = controls
    box.result = lambda: state["rec"]
    box.refresh = refresh
    return box
