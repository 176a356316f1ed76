"""The concise forms refuse what Kubernetes would refuse later, naming the concise field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kuberth.services.specs import AppSpec, IngressPath


@pytest.mark.parametrize(
    "host", ["shop-alice.apps.localhost", "www.acme.example", "a" * 63 + ".alice.apps.localhost"]
)
def test_good_hosts(host: str) -> None:
    assert AppSpec(name="shop", image="nginx", host=host).host == host


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "a" * 64 + ".alice.apps.localhost",
        "*.alice.apps.localhost",
        "Shop.example",
        "shop.example:80",
        "shop.example\n",
        "a..b",
        "",
    ],
)
def test_bad_hosts_name_the_host_field(host: str) -> None:
    with pytest.raises(ValidationError) as raised:
        AppSpec(name="shop", image="nginx", host=host)
    assert raised.value.errors()[0]["loc"] == ("host",)


@pytest.mark.parametrize("path", ["/", "/api", "/a/b.c/", "/%20x", "/a-b_c~"])
def test_good_paths(path: str) -> None:
    assert IngressPath(path=path, service="web", port=80).path == path


@pytest.mark.parametrize(
    "path", ["api", "", "/a b", "/a//b", "/a/./b", "/a/../b", "/a%2fb", "/a%2Fb", "/a/.", "/a/.."]
)
def test_bad_paths_name_the_path_field(path: str) -> None:
    with pytest.raises(ValidationError) as raised:
        IngressPath(path=path, service="web", port=80)
    assert raised.value.errors()[0]["loc"] == ("path",)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_replica_counts_or_ports(value: bool) -> None:
    """Found by Schemathesis: {"replicas": false} once scaled a Deployment to zero."""
    with pytest.raises(ValidationError, match="not true or false"):
        AppSpec.model_validate({"name": "web", "image": "nginx", "replicas": value})
    with pytest.raises(ValidationError, match="not true or false"):
        AppSpec.model_validate({"name": "web", "image": "nginx", "port": value})


def test_numbers_from_a_form_still_count() -> None:
    """The pages send every value as text; "3" is three."""
    assert AppSpec.model_validate({"name": "web", "image": "nginx", "replicas": "3"}).replicas == 3
