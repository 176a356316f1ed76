"""Builds the per-process services once, at start-up, from the settings."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from kuberth.services.admin import AdminService, Usage, quota_usage
from kuberth.services.admission import IngressAdmission, WebhookRegistration
from kuberth.services.apps import AppService
from kuberth.services.audit import AuditService
from kuberth.services.builders.admission import ingress_policy, service_policy
from kuberth.services.builders.tenant import MANAGED_BY, TenantPolicy, tenant_cluster_role
from kuberth.services.builders.workloads import KUBERTH_APP
from kuberth.services.dashboard import (
    APP_SELECTOR,
    AppPart,
    DashboardService,
    deployment_part,
    ingress_part,
)
from kuberth.services.health import HealthService
from kuberth.services.host_claims import IngressClaims
from kuberth.services.hosts import HostClaims, Hosts, hosts_of, ingress_hosts
from kuberth.services.kubeconfigs import KubeconfigService
from kuberth.services.leader import LeaderElector, holder_identity
from kuberth.services.logs import LogService
from kuberth.services.namespaces import NamespaceService
from kuberth.services.policy import WorkloadPolicy
from kuberth.services.provisioned import CountedNamespaceStorage
from kuberth.services.provisioning import Provisioner
from kuberth.services.reconciler import Reconciler
from kuberth.services.signup import SignupRules
from kuberth.services.signup_review import SignupReview
from kuberth.services.suspension import AppSuspension
from kuberth.services.token_cache import TokenCache
from kuberth.services.tokens import TokenService
from kuberth.services.users import UserService
from kuberth.services.workloads import WorkloadService
from kuberth.settings import Settings
from kuberth.storage.database.engine import Database, make_engine, migrate
from kuberth.storage.github import GitHubApi, GitHubMembership
from kuberth.storage.kubernetes.api import KubernetesApi
from kuberth.storage.kubernetes.apps import AppStorage
from kuberth.storage.kubernetes.client import make_api_client
from kuberth.storage.kubernetes.informer import Informer
from kuberth.storage.kubernetes.leases import LeaseStorage
from kuberth.storage.kubernetes.namespaces import NamespaceStorage
from kuberth.storage.kubernetes.resources import (
    BASELINE_STORAGE,
    CLUSTER_STORAGE,
    DeploymentStorage,
    EndpointSliceStorage,
    EventStorage,
    IngressStorage,
    PodStorage,
    ResourceQuotaStorage,
    RoleBindingStorage,
    ServiceAccountStorage,
    ValidatingWebhookConfigurationStorage,
)


@dataclass
class Services:
    settings: Settings
    database: Database
    health: HealthService
    users: UserService
    namespaces: NamespaceService
    dashboard: DashboardService
    tokens: TokenService
    provisioner: Provisioner
    signup: SignupRules
    github: GitHubApi
    workloads: WorkloadService
    apps: AppService
    #: The logs of Deployments' and apps' pods.
    logs: LogService
    kubeconfigs: KubeconfigService
    audit: AuditService
    admin: AdminService
    reconciler: Reconciler
    #: Host ownership for every Ingress writer (the webhook's answers) and its registration.
    admission: IngressAdmission
    webhook: WebhookRegistration
    #: The sign-up rules checked again after sign-in.
    review: SignupReview
    #: Elects the one replica that reconciles.
    leader: LeaderElector

    kubernetes: KubernetesApi
    #: Watch-fed copies of cluster objects; each starts on first use.
    informers: list[Informer[Any]]
    membership: GitHubMembership | None = None

    async def aclose(self) -> None:
        for informer in self.informers:
            informer.stop()
        await self.github.aclose()  # the membership checks' client too
        await self.audit.aclose()
        await self.database.adispose()
        await self.kubernetes.aclose()
        self.kubernetes.close()


def build_services(settings: Settings) -> Services:
    """Wire storage into services. Migrates the database to the newest schema."""
    database = Database(
        make_engine(settings.database_url), retry_after=settings.kubernetes_retry_after
    )
    migrate(database.engine)
    api = KubernetesApi(
        make_api_client(settings),
        timeout=settings.kubernetes_request_timeout,
        retry_after=settings.kubernetes_retry_after,
        throttle_budget=settings.kubernetes_throttle_budget,
    )
    namespaces = NamespaceStorage(api)
    baseline_storage = {kind: storage(api) for kind, storage in BASELINE_STORAGE.items()}
    reserved = (settings.kuberth_namespace, *settings.reserved_namespaces)
    provisioner = Provisioner(
        namespaces=CountedNamespaceStorage(api),
        cluster_storage={kind: storage(api) for kind, storage in CLUSTER_STORAGE.items()},
        cluster_objects=[
            tenant_cluster_role(),
            *ingress_policy(
                apps_domain=settings.apps_domain, ingress_classes=settings.ingress_classes
            ),
            *service_policy(service_types=settings.service_types),
        ],
        baseline_storage=baseline_storage,
        policy=TenantPolicy(
            quota=settings.tenant_quota,
            default_requests=settings.tenant_default_requests,
            default_limits=settings.tenant_default_limits,
            pod_security_level=settings.pod_security_level,
            ingress_controller_namespace=settings.ingress_controller_namespace,
            egress=settings.tenant_egress,
            egress_blocked_cidrs=settings.tenant_egress_blocked_cidrs,
            node_selector=settings.tenant_node_selector,
            tolerations=settings.tenant_tolerations,
        ),
        prefix=settings.namespace_prefix,
        reserved=reserved,
    )
    audit = AuditService(sessions=database.session, writes=database.abegin, areads=database.aread)
    namespace_service = NamespaceService(
        sessions=database.session,
        asessions=database.asession,
        reads=database.read,
        areads=database.aread,
        namespaces=namespaces,
        quotas=ResourceQuotaStorage(api),
        provisioner=provisioner,
        reserved=reserved,
        max_per_user=settings.max_namespaces_per_user,
        delete_timeout=settings.namespace_delete_timeout,
        audit=audit,
    )
    # Every Ingress in the cluster, by host: who holds a host is a lookup, not a list per claim.
    host_index = Informer[Hosts](
        api, IngressStorage.kind, label_selector="", project=ingress_hosts, index=hosts_of
    )
    host_claims = HostClaims(
        asessions=database.asession,
        ingresses=IngressStorage(api),
        index=host_index,
        index_wait=settings.kubernetes_request_timeout,
    )
    policy = WorkloadPolicy(
        apps_domain=settings.apps_domain,
        custom_domains=settings.custom_domains,
        ingress_classes=tuple(settings.ingress_classes),
        service_types=tuple(settings.service_types),
    )
    ingress_claims = IngressClaims(hosts=host_claims, policy=policy, asessions=database.asession)
    workloads = WorkloadService(
        namespaces=namespace_service,
        api=api,
        pods=PodStorage(api),
        events=EventStorage(api),
        endpoint_slices=EndpointSliceStorage(api),
        hosts=host_claims,
        claims=ingress_claims,
        policy=policy,
        audit=audit,
        rollout_timeout=settings.rollout_timeout,
    )
    quota_usage_cache = Informer[Usage](
        api,
        ResourceQuotaStorage.kind,
        label_selector=f"{MANAGED_BY}=kuberth",
        project=quota_usage,
    )
    app_deployments = Informer[AppPart](
        api, DeploymentStorage.kind, label_selector=APP_SELECTOR, project=deployment_part
    )
    app_ingresses = Informer[AppPart](
        api, IngressStorage.kind, label_selector=APP_SELECTOR, project=ingress_part
    )
    admin = AdminService(
        asessions=database.asession,
        areads=database.aread,
        provisioner=provisioner,
        role_bindings=RoleBindingStorage(api),
        service_accounts=ServiceAccountStorage(api),
        quotas=quota_usage_cache,
        audit=audit,
        apps=AppSuspension(DeploymentStorage(api), access_wait=settings.kubernetes_request_timeout),
        cache_wait=settings.kubernetes_request_timeout,
    )
    signup = SignupRules.from_settings(
        anyone=settings.signup_anyone,
        logins=settings.signup_logins,
        orgs=settings.signup_orgs,
        teams=settings.signup_teams,
    )
    github = GitHubApi(settings.github_api_url)
    token = settings.signup_membership_token
    membership = GitHubMembership(github, token.get_secret_value()) if token else None
    review = SignupReview(
        asessions=database.asession,
        rules=signup,
        membership=membership,
        admin=admin,
        audit=audit,
        interval=settings.signup_recheck_interval,
    )
    return Services(
        settings=settings,
        database=database,
        health=HealthService(probes={"kubernetes": api, "database": database}),
        users=UserService(
            sessions=database.session,
            asessions=database.asession,
            areads=database.aread,
            provisioner=provisioner,
            admin_ids=frozenset(settings.admin_github_ids),
            audit=audit,
            session_idle=datetime.timedelta(seconds=settings.session_idle_timeout),
            recheck=review,
            token_cache=TokenCache(
                seconds=settings.token_cache_seconds, epoch=lambda: database.principals_epoch
            ),
        ),
        namespaces=namespace_service,
        dashboard=DashboardService(
            namespaces=namespace_service,
            deployments=app_deployments,
            ingresses=app_ingresses,
            cache_wait=settings.kubernetes_request_timeout,
            url_template=settings.app_url_template,
        ),
        tokens=TokenService(asessions=database.asession, areads=database.aread, audit=audit),
        provisioner=provisioner,
        signup=signup,
        github=github,
        kubernetes=api,
        informers=[quota_usage_cache, app_deployments, app_ingresses, host_index],
        workloads=workloads,
        apps=AppService(
            apps=AppStorage(api, label=KUBERTH_APP),
            namespaces=namespace_service,
            claims=ingress_claims,
            policy=policy,
            audit=audit,
            pods=PodStorage(api),
            events=EventStorage(api),
            endpoint_slices=EndpointSliceStorage(api),
            apps_domain=settings.apps_domain,
            url_template=settings.app_url_template,
        ),
        logs=LogService(workloads=workloads, pods=PodStorage(api)),
        kubeconfigs=KubeconfigService(
            namespaces=namespace_service,
            service_accounts=ServiceAccountStorage(api),
            role_bindings=RoleBindingStorage(api),
            audit=audit,
            server_url=settings.kubernetes_public_url or api.server_url,
            ca_pem=api.ca_pem(),
            lifetime=settings.kubeconfig_token_lifetime,
        ),
        audit=audit,
        admin=admin,
        reconciler=Reconciler(
            asessions=database.asession,
            namespaces=namespaces,
            baseline_storage=baseline_storage,
            provisioner=provisioner,
            hosts=host_claims,
            withdraw=admin.awithdraw,
            sweep=review.run_sweep,
            sweep_interval=settings.signup_recheck_interval / 3,
        ),
        admission=IngressAdmission(areads=database.aread, claims=ingress_claims),
        webhook=WebhookRegistration(
            configurations=ValidatingWebhookConfigurationStorage(api),
            secret_key=settings.session_secret(),
            timeout_seconds=settings.admission_timeout,
        ),
        review=review,
        membership=membership,
        leader=LeaderElector(
            leases=LeaseStorage(api),
            namespaces=namespaces,
            namespace=settings.kuberth_namespace,
            identity=holder_identity(),
            lease_duration=settings.lease_duration,
            renew_interval=settings.lease_renew_interval,
        ),
    )
