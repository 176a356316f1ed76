"""The recent logs an app's or a Deployment's page shows; its script follows them live."""

from __future__ import annotations

from kuberth.exceptions import KuberthError
from kuberth.http.services import Services
from kuberth.services.kinds import DEPLOYMENT
from kuberth.services.logs import LogRequest
from kuberth.services.principal import Principal


async def recent_logs(
    services: Services, principal: Principal, namespace: str, name: str, *, app: bool
) -> dict[str, str | None]:
    """The recent lines of a Deployment's (an app's) pods for its page, or why there are none;
    the page's script follows them live from the same API."""
    kind = "apps" if app else DEPLOYMENT.plural
    asked = LogRequest()
    try:
        sources = await services.logs.sources(principal, namespace, name, asked, app=app)
        text: str | None = await services.logs.read(principal, namespace, sources, asked)
        error = None if sources else "No pod has started yet."
    except KuberthError as failure:
        text, error = None, failure.message
    return {
        "url": f"/api/v1/namespaces/{namespace}/{kind}/{name}/logs",
        "text": text,
        "error": error,
        "tail": str(asked.tail),
    }
