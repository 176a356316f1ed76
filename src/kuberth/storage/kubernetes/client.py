"""Makes the Kubernetes API client once per process, from a kubeconfig or the in-cluster config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from kubernetes import client, config

from kuberth.settings import Settings


def make_api_client(settings: Settings) -> client.ApiClient:
    """Kuberth's own API client.

    An explicit ``KUBERTH_KUBECONFIG`` wins; then ``KUBECONFIG``; then the in-cluster service
    account when running in a pod; then ~/.kube/config, as kubectl does.
    """
    if settings.kubeconfig is not None:
        return cast(client.ApiClient, config.new_client_from_config(str(settings.kubeconfig)))
    if not os.environ.get("KUBECONFIG") and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
    return cast(client.ApiClient, config.new_client_from_config(kubeconfig.split(os.pathsep)[0]))
