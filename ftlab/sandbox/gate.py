"""The sandbox's emulation of OpenAI's fine-tuning wind-down: refuse job creation once the date says so.

``ftlab sandbox --as-of 2026-12-02 --org-status new`` makes ``POST /v1/fine_tuning/jobs`` answer the
way the OpenAI API answers a refused request: HTTP 403 with ``{"error": {"message", "type", "param",
"code"}}``, so ``client.fine_tuning.jobs.create(...)`` raises ``openai.PermissionDeniedError``. The
dates come from the price catalog (``ftlab.cost.availability``), the same ones ``ftlab cost --as-of``
prints. OpenAI does not document the exact status and code of this refusal: the shape is the API's,
the status (403, or 404 ``model_not_found`` for a retired base model) and the code
(``fine_tuning_unavailable``) are the sandbox's choice.

The Azure OpenAI routes (``/openai/...?api-version=``) are never gated: Azure OpenAI runs its own
lifecycle and is the route that still fine-tunes these models.

    >>> gate = WindDownGate("2026-12-02", "new")
    >>> gate.refusal("gpt-4.1-mini")[0], gate.refusal("gpt-4.1-mini")[2]
    (403, 'fine_tuning_unavailable')
    >>> WindDownGate("2026-12-02", "active").refusal("gpt-4.1-mini") is None
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from ftlab import cost
from ftlab.errors import FtlabError

__all__ = ["WindDownGate"]


@dataclass(frozen=True)
class WindDownGate:
    """Job creation as OpenAI answers it on ``as_of`` (YYYY-MM-DD, None = today) to an organisation in
    ``org_status`` (new | inactive | active; None: no particular organisation)."""

    as_of: str | None = None
    org_status: str | None = None

    def __post_init__(self) -> None:
        cost.parse_date(self.as_of, "--as-of")
        if self.org_status is not None and self.org_status not in cost.ORG_STATUSES:
            raise FtlabError(f"--org-status {self.org_status!r}: expected one of {', '.join(cost.ORG_STATUSES)}")

    def refusal(self, model: str) -> tuple[int, str, str] | None:
        """``(http_status, message, code)`` when a job on ``model`` is refused, else None (unknown models: None)."""
        try:
            av = cost.availability(model, self.as_of, org_status=self.org_status)
        except FtlabError:
            return None
        if av.available:
            return None
        alt = f" Azure OpenAI still fine-tunes it ({av.alternative})." if av.alternative else ""
        if av.status == "retired":
            return 404, f"The model '{model}' has been retired ({av.date}) and can no longer be fine-tuned.{alt}", \
                "model_not_found"
        return 403, (f"Fine-tuning job creation is not available to your organization: {av.reason}.{alt} "
                     f"(ftlab sandbox emulating {av.as_of}; source: {av.source.split(' ')[0]})"), "fine_tuning_unavailable"
