"""Namespace names (validity, reservation, collision-proof personal names), object names, hosts."""

from __future__ import annotations

import pytest

from kuberth.services.naming import (
    alternative_name,
    invalid_host_reason,
    invalid_name_reason,
    invalid_object_name_reason,
    is_reserved,
    personal_name_candidates,
)


@pytest.mark.parametrize("name", ["a", "alice", "a-b", "a1", "x" * 63, "0abc"])
def test_valid_names(name: str) -> None:
    assert invalid_name_reason(name) is None


@pytest.mark.parametrize("name", ["", "A", "a_b", "-a", "a-", "x" * 64, "ä", "a.b", "a b", "a\n"])
def test_invalid_names(name: str) -> None:
    assert invalid_name_reason(name)  # a reason, and a non-empty one


@pytest.mark.parametrize(
    "name", ["default", "kube-system", "kube-public", "kube-node-lease", "kube-x", "openshift-x"]
)
def test_reserved_names(name: str) -> None:
    assert is_reserved(name)


def test_operator_reserved_names() -> None:
    assert is_reserved("kuberth", extra=["kuberth"])
    assert not is_reserved("kuberth")
    assert not is_reserved("kubernetes-fan")  # kube- is a prefix with its hyphen


def test_a_usable_login_is_its_own_name_first() -> None:
    assert personal_name_candidates("Alice", 42) == ["alice", "alice--42"]
    assert personal_name_candidates("alice", 42, prefix="t-") == ["t-alice", "t-alice--42"]


@pytest.mark.parametrize(
    ("login", "expected"),
    [
        ("default", "default--7"),
        ("kube-system", "gh--7"),  # the alternative must not be reserved either
        ("openshift-infra", "gh--7"),
    ],
)
def test_reserved_logins_get_only_the_alternative(login: str, expected: str) -> None:
    assert personal_name_candidates(login, 7) == [expected]


def test_operator_reserved_logins_get_only_the_alternative() -> None:
    assert personal_name_candidates("kuberth", 7, reserved=["kuberth"]) == ["kuberth--7"]


def test_long_logins_are_cut_to_fit() -> None:
    name = alternative_name("a" * 39, 12345678901, prefix="tenant-")
    assert len(name) <= 63
    assert invalid_name_reason(name) is None
    assert name.endswith("--12345678901")


def test_alternatives_never_collide_with_login_names() -> None:
    """GitHub logins have no '--', and two alternatives differ by their ids."""
    logins = ["alice", "alice-42", "alice--42", "a-l-i-c-e", "ALICE", "kube-x", "default"]
    alternatives = {alternative_name(login, 42) for login in logins}
    assert all("--" in name for name in alternatives)
    assert not alternatives & {login.lower() for login in logins if "--" not in login}
    assert alternative_name("alice", 1) != alternative_name("alice", 2)


def test_alternatives_are_always_valid() -> None:
    for login in ["", "---", "ÄÖÜ", "a" * 100, "x_y", "-lead", "trail-"]:
        assert invalid_name_reason(alternative_name(login, 99)) is None


@pytest.mark.parametrize("name", ["a", "web", "web-1", "a.b", "my.app-2", "0", "x" * 253])
def test_valid_object_names(name: str) -> None:
    assert invalid_object_name_reason(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "Web",
        "a..b",
        "-a",
        "a-",
        ".a",
        "a.",
        "a b",
        "a/b",
        "a?b",
        "wéb",
        "a\n",
        "a\x00",
        "x" * 254,
    ],
)
def test_invalid_object_names(name: str) -> None:
    assert invalid_object_name_reason(name)  # a reason, and a non-empty one


@pytest.mark.parametrize(
    "host",
    [
        "web-alice.apps.localhost",
        "a.b",
        "x",
        "1.2.3",
        "a" * 63 + ".example",
        "xn--bcher-kva.example",
    ],
)
def test_valid_hosts(host: str) -> None:
    assert invalid_host_reason(host) is None


@pytest.mark.parametrize(
    ("host", "because"),
    [
        ("", "empty"),
        ("10.0.0.1", "IP"),
        ("::1", "IP"),
        ("Web.example", "lower case"),
        ("a..b", "lower case"),
        ("web.example:80", "port"),
        ("http://web.example", "scheme"),
        ("web.example.", "lower case"),
        ("*.example", "lower case"),  # wildcards are refused before, by policy
        ("a" * 64 + ".example", "63"),
        ("a." * 127 + "ab", "253"),
        ("web.example\n", "lower case"),
    ],
)
def test_invalid_hosts(host: str, because: str) -> None:
    reason = invalid_host_reason(host)
    assert reason is not None
    assert because in reason
