"""Makes the Kubernetes API client once per process, from a kubeconfig or the in-cluster config."""

from __future__ import annotations

import os
from pathlib import Path

import urllib3
from kubernetes import client, config

from kuberth.settings import Settings

#: Connections kept open to the API server. Every worker thread of the server may hold one; with
#: the client's default (5 x CPUs, 10 on two cores) the rest were opened for one request and
#: thrown away, each costing a TLS handshake. Matches ``kuberth.cli.WORKER_THREADS``.
CONNECTION_POOL_SIZE = 64


def make_api_client(settings: Settings) -> client.ApiClient:
    """Kuberth's own API client.

    An explicit ``KUBERTH_KUBECONFIG`` wins; then ``KUBECONFIG``; then the in-cluster service
    account when running in a pod; then ~/.kube/config, as kubectl does.
    """
    configuration = client.Configuration()
    if settings.kubeconfig is not None:
        config.load_kube_config(str(settings.kubeconfig), client_configuration=configuration)
    elif not os.environ.get("KUBECONFIG") and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        config.load_kube_config(kubeconfig.split(os.pathsep)[0], client_configuration=configuration)
    # urllib3 would otherwise resend idempotent requests on 429/503 by itself, sleeping as long
    # as any Retry-After says and invisibly to Kuberth. KubernetesApi waits out throttling within
    # its own budget instead; a fresh connection is still retried once (a pooled one may have
    # been closed by the API server).
    configuration.retries = urllib3.Retry(
        total=1, connect=1, read=0, redirect=0, status=0, respect_retry_after_header=False
    )
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    return client.ApiClient(configuration)
