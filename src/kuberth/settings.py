"""All of Kuberth's configuration, read once from ``KUBERTH_*`` environment variables."""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _xdg_dir(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable)
    return (Path(base) if base else Path.home() / fallback) / "kuberth"


class Settings(BaseSettings):
    """Kuberth's settings; every field can be set as ``KUBERTH_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="KUBERTH_", extra="ignore")

    environment: Literal["development", "production"] = Field(
        default="production",
        description="`development` relaxes checks meant for real deployments.",
    )
    host: str = Field(default="127.0.0.1", description="Address `kuberth serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `kuberth serve` listens on.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="`json`: one object a line, for log collectors; `text`: for people. Unset: "
        "text in development, json otherwise.",
    )
    shutdown_timeout: float = Field(
        default=25.0,
        gt=0,
        description="Seconds `kuberth serve` lets in-flight requests finish after SIGTERM; below "
        "Kubernetes' default 30 s grace period, so requests end before the pod is killed.",
    )

    kubeconfig: Path | None = Field(
        default=None,
        description=(
            "Kubeconfig for Kuberth's own identity. Unset: `KUBECONFIG`, then the in-cluster "
            "service account, then ~/.kube/config."
        ),
    )
    kubernetes_request_timeout: float = Field(
        default=10.0, gt=0, description="Seconds any single Kubernetes API call may take."
    )
    kubernetes_retry_after: int = Field(
        default=5, ge=1, description="Retry-After (seconds) sent when the cluster is unreachable."
    )
    kubernetes_throttle_budget: float = Field(
        default=3.0,
        ge=0,
        description=(
            "Seconds one call may spend waiting out the API server's 429s (as its Retry-After "
            "asks) before Kuberth gives up with a 503."
        ),
    )

    cluster_dir: Path = Field(
        default_factory=lambda: _xdg_dir("XDG_STATE_HOME", ".local/state") / "cluster",
        description="State of the local control plane: certificates, etcd data, logs, kubeconfig.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: _xdg_dir("XDG_CACHE_HOME", ".cache"),
        description="Where the Go-built control-plane binaries are cached, keyed by version.",
    )
    cluster_apps_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Host port (on 127.0.0.1) where the local cluster's Ingress controller serves "
        "apps, when it has a real node; any free port if taken, or for 0.",
    )

    # -- sign-in --------------------------------------------------------------------------------
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where users reach Kuberth; the OAuth redirect URI is built from it, exactly.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs session cookies. Required (32+ characters) outside development.",
    )
    github_url: str = Field(
        default="https://github.com",
        description="GitHub's web URL (authorize and token endpoints); GitHub Enterprise's here.",
    )
    github_api_url: str = Field(
        default="https://api.github.com", description="GitHub's REST API URL."
    )
    github_client_id: str = Field(default="", description="The GitHub OAuth app's client id.")
    github_client_secret: SecretStr = Field(
        default=SecretStr(""), description="The GitHub OAuth app's client secret."
    )
    signup_anyone: bool = Field(
        default=False, description="Let any GitHub user sign up. Off: only the rules below."
    )
    signup_logins: list[str] = Field(
        default=[], description="GitHub logins that may sign up (JSON list)."
    )
    signup_orgs: list[str] = Field(
        default=[], description="Members of these GitHub organisations may sign up."
    )
    signup_teams: list[str] = Field(
        default=[], description="Members of these teams, as `org/team-slug`, may sign up."
    )
    signup_membership_token: SecretStr | None = Field(
        default=None,
        description="A GitHub token with `read:org` (of someone who can see the orgs' and teams' "
        "members) that Kuberth re-checks org and team membership with after sign-in. Without it, "
        "membership is checked only at sign-in (the login rules are re-checked always).",
    )
    signup_recheck_interval: float = Field(
        default=900.0,
        ge=1,
        description="Seconds a user's sign-up verdict is trusted: within about this long (4/3 of "
        "it for kubeconfigs and running apps, swept by the reconciling replica) a user the rules "
        "no longer allow loses access everywhere. Narrowed login rules apply at once.",
    )
    admin_github_ids: list[int] = Field(
        default=[],
        description="Numeric GitHub ids of operators: they see every tenant. Ids, because logins "
        "can be renamed and then taken by someone else.",
    )

    # -- storage --------------------------------------------------------------------------------
    database_url: str = Field(
        default_factory=lambda: (
            "sqlite:///" + str(_xdg_dir("XDG_STATE_HOME", ".local/state") / "kuberth.db")
        ),
        description="SQLAlchemy URL: SQLite (the default) or postgresql+psycopg://...",
    )

    # -- tenants --------------------------------------------------------------------------------
    namespace_prefix: str = Field(
        default="",
        pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?-)?$",
        description="Put before every personal namespace name, e.g. `t-`.",
    )
    kuberth_namespace: str = Field(
        default="kuberth", description="Kuberth's own namespace; never given to a tenant."
    )
    reserved_namespaces: list[str] = Field(
        default=[],
        description="More names no tenant may have, besides default, kube-*, openshift-* and "
        "Kuberth's own.",
    )
    max_namespaces_per_user: int = Field(
        default=4, ge=1, description="Namespaces a tenant may hold, the personal one included."
    )
    tenant_quota: dict[str, str] = Field(
        default={
            "requests.cpu": "4",
            "requests.memory": "8Gi",
            "limits.cpu": "8",
            "limits.memory": "16Gi",
            "pods": "50",
            "services": "20",
            "services.nodeports": "0",
            "services.loadbalancers": "0",
            "count/deployments.apps": "20",
            "count/ingresses.networking.k8s.io": "20",
            "persistentvolumeclaims": "10",
            "requests.storage": "20Gi",
        },
        description="The ResourceQuota of every tenant namespace (`hard`).",
    )
    tenant_default_requests: dict[str, str] = Field(
        default={"cpu": "100m", "memory": "128Mi"},
        description="LimitRange: requests a container gets when it names none.",
    )
    tenant_default_limits: dict[str, str] = Field(
        default={"cpu": "500m", "memory": "512Mi"},
        description="LimitRange: limits a container gets when it names none.",
    )
    pod_security_level: Literal["restricted", "baseline", "privileged"] = Field(
        default="restricted", description="Pod Security Admission level enforced on tenants."
    )
    tenant_node_selector: dict[str, str] = Field(
        default={},
        description="Node labels every tenant pod is pinned to (the namespace's "
        "`scheduler.alpha.kubernetes.io/node-selector`; needs the PodNodeSelector admission "
        "plugin). `kuberth dev` sets it to the local real node when there is one.",
    )
    tenant_tolerations: list[dict[str, str]] = Field(
        default=[],
        description="Tolerations every tenant pod gets (the namespace's "
        "`scheduler.alpha.kubernetes.io/defaultTolerations`; needs the PodTolerationRestriction "
        "admission plugin), e.g. for a tainted pool of tenant nodes.",
    )
    ingress_controller_namespace: str = Field(
        default="ingress-nginx",
        description="Namespace of the ingress controller, allowed through the default-deny policy.",
    )
    tenant_egress: Literal["internet", "namespace", "open"] = Field(
        default="internet",
        description="Where tenant pods may connect (the egress of each tenant namespace's "
        "NetworkPolicy). `internet`: their own namespace, cluster DNS (port 53 of kube-system's "
        "kube-dns pods) and any IPv4 address outside KUBERTH_TENANT_EGRESS_BLOCKED_CIDRS, so "
        "never another tenant's pods or Services, the nodes, the API server or a cloud's "
        "metadata endpoint on a private address. `namespace`: their own namespace and cluster "
        "DNS only. `open`: anywhere (no egress rule at all; for trusted tenants only).",
    )
    tenant_egress_blocked_cidrs: list[str] = Field(
        default=[
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
        ],
        description="IPv4 ranges `internet` egress never reaches: the cluster's own networks "
        "(pods, Services, nodes, the API server; RFC 1918 and RFC 6598 shared space, where the "
        "local real node's veth is) and link-local (cloud metadata endpoints). Add a cluster's "
        "public node or pod ranges here.",
    )
    # -- workloads ------------------------------------------------------------------------------
    apps_domain: str = Field(
        default="apps.localhost",
        pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        description="Apps get `<app>-<namespace>.<apps domain>`; a tenant may use hosts ending in "
        "`-<namespace>.<apps domain>` or under `<namespace>.<apps domain>` for its namespaces.",
    )
    app_url_template: str = Field(
        default="http://{host}/",
        pattern=r"^https?://\{host\}(:[0-9]{1,5})?/$",
        description="How people reach an app at its Ingress host, for the links Kuberth shows "
        "(`https://{host}/` behind TLS; `kuberth dev` adds the local apps port).",
    )
    custom_domains: dict[str, list[int]] = Field(
        default={},
        description="Operator-verified domains and the GitHub ids that may use hosts under them.",
    )
    suggested_image: str = Field(
        default="nginxinc/nginx-unprivileged:1.27",
        min_length=1,
        description="The image the New app and New Deployment forms start with. It must run "
        "under `pod_security_level` (a numeric non-root USER) and listen on 8080, the forms' "
        "default port. `kuberth dev` sets it to the real node's demo web image.",
    )
    ingress_classes: list[str] = Field(
        default=["nginx"], description="Ingress classes tenants may use; the first is the default."
    )
    service_types: list[str] = Field(
        default=["ClusterIP"],
        description="Service types tenants may create (add NodePort / LoadBalancer to allow them).",
    )
    session_idle_timeout: float = Field(
        default=12 * 3600,
        ge=60,
        description="Seconds a browser session may go unused before it ends (sign in again).",
    )
    kubeconfig_token_lifetime: int = Field(
        default=3600, ge=600, le=86400, description="Seconds a downloaded kubeconfig's token lasts."
    )
    kubernetes_public_url: str | None = Field(
        default=None,
        description="API server URL written into downloaded kubeconfigs, when tenants reach it "
        "at another address than Kuberth does.",
    )
    rollout_timeout: float = Field(
        default=120.0, gt=0, le=600, description="Longest a rollout watch waits."
    )
    namespace_delete_timeout: float = Field(
        default=60.0, gt=0, le=600, description="Longest a DELETE waits for a namespace to go."
    )
    log_follow_timeout: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Longest a log follow (`GET .../logs?follow=true`) streams before Kuberth "
        "ends it; it holds one of the caller's long waits meanwhile (no thread).",
    )
    long_waits_per_tenant: int = Field(
        default=4,
        ge=1,
        description="Long waits (rollout watches, namespace deletions that wait, log follows) one "
        "user may hold at once on a replica; more are refused with 429.",
    )
    long_waits_total: int = Field(
        default=16,
        ge=1,
        le=48,
        description="Long waits a replica holds at once, all users together, on threads of their "
        "own (taken from `kuberth serve`'s 64, the rest left to other requests); more: 429.",
    )
    token_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="Seconds a replica may keep an API token's verdict instead of asking the "
        "database on every request; a token deleted or a user revoked counts at once on the "
        "replica that did it and within this time on the others. 0 asks every time.",
    )
    rate_limit_per_second: float = Field(
        default=20.0,
        ge=0,
        description="Requests a second one user may make to /api/v1 on a replica, on average; "
        "0 turns the limit off.",
    )
    rate_limit_burst: int = Field(
        default=60, ge=1, description="Requests one user may make at once before that rate applies."
    )
    reconcile_interval: float = Field(
        default=600.0,
        ge=0,
        description=(
            "Seconds between passes that complete every tenant namespace's baseline (one runs at "
            "start-up); 0 turns them off."
        ),
    )

    admission_webhook_url: str = Field(
        default="",
        pattern=r"^(https://[^/?#]+)?$",
        description=(
            "Where the API server reaches Kuberth's admission webhook (host ownership of Ingresses "
            "for every writer, kubectl included): `https://<host>:<port>`, or "
            "`https://<service>.<namespace>.svc:<port>` for a Service. Empty: no webhook, and "
            "only Kuberth's API checks that a host is free."
        ),
    )
    admission_listen_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - in a pod, the API server calls in from outside it
        description="The address the admission webhook listens on (TLS).",
    )
    admission_listen_port: int = Field(
        default=8443, ge=1, le=65535, description="The port the admission webhook listens on."
    )
    admission_timeout: int = Field(
        default=5,
        ge=1,
        le=30,
        description="Seconds the API server waits for the webhook before refusing the write.",
    )

    lease_duration: int = Field(
        default=15,
        ge=1,
        description=(
            "Seconds the reconciler's Lease is held without a renewal; a killed leader's "
            "replicas take over after at most this plus the renew interval."
        ),
    )
    lease_renew_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between the leader's renewals (and the others' tries) of the Lease.",
    )

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def oauth_redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + "/auth/github/callback"

    @property
    def json_logs(self) -> bool:
        if self.log_format is None:
            return not self.development
        return self.log_format == "json"

    @model_validator(mode="after")
    def _renewals_within_the_lease(self) -> Self:
        # A leader must get a renewal attempt in before its Lease can expire under it.
        if self.lease_renew_interval >= self.lease_duration:
            raise ValueError("KUBERTH_LEASE_RENEW_INTERVAL must be shorter than the lease duration")
        return self

    @model_validator(mode="after")
    def _egress_ranges_are_ipv4_networks(self) -> Self:
        for cidr in self.tenant_egress_blocked_cidrs:
            try:
                network = ipaddress.IPv4Network(cidr)
            except ValueError as error:
                raise ValueError(
                    f"KUBERTH_TENANT_EGRESS_BLOCKED_CIDRS: {cidr!r} is not an IPv4 network "
                    f"({error})"
                ) from error
            if network.prefixlen == 0:
                raise ValueError(
                    "KUBERTH_TENANT_EGRESS_BLOCKED_CIDRS cannot hold 0.0.0.0/0: "
                    "set KUBERTH_TENANT_EGRESS=namespace instead"
                )
        return self

    @model_validator(mode="after")
    def _development_secret_key(self) -> Self:
        if self.secret_key is None and self.development:
            # A development server signs with a key of its own; sessions end with the process.
            self.secret_key = SecretStr(secrets.token_urlsafe(32))
        return self

    def session_secret(self) -> str:
        """The key that signs sessions.

        Raises:
            ValueError: outside development, when the key is unset or shorter than 32 characters
                (checked when the server starts, so `kuberth cluster` needs no secret).
        """
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if len(key) < 32 and not self.development:
            raise ValueError(
                "KUBERTH_SECRET_KEY must be set, with 32+ characters, outside development"
            )
        return key


@lru_cache
def get_settings() -> Settings:
    """Settings of this process, read from the environment once."""
    return Settings()
