"""Names Kuberth checks itself: namespaces (valid, reserved, personal), object names and hosts.

Object names and hosts are checked here, not left to Kubernetes, because Kuberth uses them before
Kubernetes sees them: in request paths, in the audit log and in the table of claimed hosts.

Personal names are derived from the GitHub login. When that cannot be used, the alternative puts the
numeric GitHub id after a double hyphen: GitHub logins never contain ``--``, so an alternative can
never equal anyone's login-derived name, and the id makes it unique among alternatives.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

MAX_LENGTH = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_SUBDOMAIN_LENGTH = 253
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_RESERVED_PREFIXES = ("kube-", "openshift-")
_RESERVED_NAMES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


def invalid_name_reason(name: str) -> str | None:
    """Why ``name`` is not a valid namespace name (a DNS-1123 label), or None when it is."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if not name.isascii() or not _DNS_LABEL.fullmatch(name):  # fullmatch: "a\n" is no name
        return (
            "must consist of lower-case letters, digits and '-', and start and end with a letter "
            "or digit"
        )
    return None


def invalid_object_name_reason(name: str) -> str | None:
    """Why ``name`` cannot name a Deployment, Service or Ingress (a DNS-1123 subdomain), or None.

    Checked before a name goes into a Kubernetes URL: ``.`` and ``..`` would otherwise address the
    collection or the namespace itself.
    """
    if not name:
        return "must not be empty"
    if len(name) > MAX_SUBDOMAIN_LENGTH:
        return f"must be at most {MAX_SUBDOMAIN_LENGTH} characters"
    if not name.isascii() or not _DNS_SUBDOMAIN.fullmatch(name):
        return (
            "must consist of lower-case letters, digits, '-' and '.', and start and end with a "
            "letter or digit"
        )
    return None


def invalid_host_reason(host: str) -> str | None:
    """Why ``host`` cannot be an Ingress host Kuberth claims (a lower-case DNS name), or None.

    Wildcards are a policy question, answered by the caller before this.
    """
    if not host:
        return "must not be empty"
    if len(host) > MAX_SUBDOMAIN_LENGTH:
        return f"must be at most {MAX_SUBDOMAIN_LENGTH} characters"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return "must be a DNS name, not an IP address"
    if not host.isascii() or not _DNS_SUBDOMAIN.fullmatch(host):
        return (
            "must be a DNS name in lower case: letters, digits and '-' in dot-separated labels, "
            "without a port or a scheme"
        )
    if any(len(label) > MAX_LENGTH for label in host.split(".")):
        return f"each dot-separated part must be at most {MAX_LENGTH} characters"
    return None


def is_reserved(name: str, *, extra: Iterable[str] = ()) -> bool:
    """`default`, `kube-*`, `openshift-*`, and the operator's list (Kuberth's own in it)."""
    return name in _RESERVED_NAMES or name.startswith(_RESERVED_PREFIXES) or name in set(extra)


def _sanitize(login: str) -> str:
    """Lower-case; runs of anything but ASCII letters and digits become one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", login.lower()).strip("-")


def login_name(login: str, *, prefix: str = "") -> str:
    """The name a login asks for: ``<prefix><login in lower case>`` (may be invalid or reserved)."""
    return prefix + login.lower()


def alternative_name(login: str, github_id: int, *, prefix: str = "") -> str:
    """The deterministic, collision-proof name for a login whose own name cannot be used."""
    suffix = f"--{github_id}"
    room = MAX_LENGTH - len(prefix) - len(suffix)
    base = _sanitize(login)[:room].strip("-")
    name = f"{prefix}{base}{suffix}" if base else f"{prefix}gh{suffix}"
    if is_reserved(name):  # e.g. login kube-system: the alternative must not be reserved either
        name = f"{prefix}gh{suffix}"
    return name


def personal_name_candidates(
    login: str, github_id: int, *, prefix: str = "", reserved: Iterable[str] = ()
) -> list[str]:
    """Names to try for a personal namespace, in order: the login's, then the alternative."""
    wanted = login_name(login, prefix=prefix)
    alternative = alternative_name(login, github_id, prefix=prefix)
    if invalid_name_reason(wanted) is None and not is_reserved(wanted, extra=reserved):
        return [wanted, alternative]
    return [alternative]
