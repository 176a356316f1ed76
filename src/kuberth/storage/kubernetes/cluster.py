"""Questions about the API server itself (reachability), as opposed to any one kind."""

from __future__ import annotations

import urllib3
from kubernetes import client

from kuberth.exceptions import KubernetesUnavailableError


class ClusterStorage:
    """Probes the API server Kuberth is configured against."""

    def __init__(self, api_client: client.ApiClient, *, timeout: float, retry_after: int) -> None:
        self._api = api_client
        self._timeout = timeout
        self._retry_after = retry_after

    def check_ready(self) -> None:
        """Ask the API server's ``/readyz`` (one request, body not parsed).

        Raises:
            KubernetesUnavailableError: the API server is unreachable, too slow, or not ready.
        """
        method, url, headers, body, _ = self._api.param_serialize(
            method="GET", resource_path="/readyz", auth_settings=["BearerToken"]
        )
        try:
            response = self._api.call_api(
                method, url, header_params=headers, body=body, _request_timeout=self._timeout
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubernetesUnavailableError(
                f"the Kubernetes API server is unreachable ({type(error).__name__})",
                retry_after=self._retry_after,
            ) from error
        if response.status != 200:
            raise KubernetesUnavailableError(
                f"the Kubernetes API server is not ready ({response.status} {response.reason})",
                retry_after=self._retry_after,
            )
