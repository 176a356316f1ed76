"""The admission policies that hold kubectl users to Kuberth's rules."""

from __future__ import annotations

from kuberth.services.builders.admission import ingress_policy, service_policy


def test_policies_skip_requests_kuberth_already_checked_and_bind_to_tenant_namespaces() -> None:
    for policy, binding in (
        ingress_policy(apps_domain="apps.example.com", ingress_classes=["nginx"]),
        service_policy(service_types=["ClusterIP"]),
    ):
        condition = policy["spec"]["matchConditions"][0]["expression"]
        assert condition == "!('kuberth:tenants' in request.userInfo.groups)"
        assert binding["spec"]["policyName"] == policy["metadata"]["name"]
        assert binding["spec"]["validationActions"] == ["Deny"]
        selector = binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
        assert selector == {"app.kubernetes.io/managed-by": "kuberth"}


def test_the_apps_domain_is_escaped_in_the_host_pattern() -> None:
    policy, _ = ingress_policy(apps_domain="apps.example.com", ingress_classes=["nginx", "it's"])
    rules = policy["spec"]["validations"][0]["expression"]
    assert "apps\\\\.example\\\\.com$" in rules  # dots are literal, not "any character"
    classes = policy["spec"]["validations"][4]["expression"]
    assert "'it\\'s'" in classes
