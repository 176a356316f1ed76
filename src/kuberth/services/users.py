"""Signing in (after GitHub has said who it is) and recognising users on later requests."""

from __future__ import annotations

import datetime

from kuberth.exceptions import ForbiddenError, UnauthenticatedError
from kuberth.services.audit import AuditService
from kuberth.services.principal import Principal
from kuberth.services.provisioning import Provisioner
from kuberth.storage.database.engine import Reads, Sessions
from kuberth.storage.database.models import User
from kuberth.storage.database.tokens import TokenStore, token_owner
from kuberth.storage.database.users import NamespaceStore, UserStore
from kuberth.storage.github import GitHubUser

#: A token's ``last_used_at`` is written at most this often: to the minute is all anyone reads
#: from it, and a write on every API request would make each one a transaction with a commit.
LAST_USED_EVERY = datetime.timedelta(minutes=1)


class UserService:
    def __init__(
        self,
        *,
        sessions: Sessions,
        reads: Reads,
        provisioner: Provisioner,
        admin_ids: frozenset[int],
        audit: AuditService,
    ) -> None:
        self._sessions = sessions
        self._reads = reads
        self._provisioner = provisioner
        self._admin_ids = admin_ids
        self._audit = audit

    def principal(self, user: User) -> Principal:
        return Principal(user.id, user.login, user.name, is_admin=user.id in self._admin_ids)

    def sign_in(self, github_user: GitHubUser) -> tuple[Principal, str]:
        """Record the sign-in and make sure the personal namespace is complete; return its name.

        Kubernetes first, database second: if provisioning fails nothing is recorded, and if the
        database fails afterwards the namespace's owner label lets the next sign-in adopt it.

        Raises:
            KuberthError: provisioning failed (the user can sign in again; it converges).
        """
        with self._sessions() as session:
            existing = UserStore(session).get(github_user.id)
            if existing is not None and existing.revoked_at is not None:
                raise ForbiddenError("your access to Kuberth was revoked by an operator")
            known = NamespaceStore(session).personal(github_user.id)
            known_name = known.name if known else None
        namespace = self._provisioner.provision_personal(
            github_id=github_user.id, login=github_user.login, known=known_name
        )
        with self._sessions() as session:
            user = UserStore(session).upsert(
                github_id=github_user.id, login=github_user.login, name=github_user.name
            )
            store = NamespaceStore(session)
            if known_name and known_name != namespace:
                store.forget(known_name)
            store.record(name=namespace, owner_id=github_user.id, personal=True)
            principal = self.principal(user)
        if namespace != known_name:  # a personal namespace made (or adopted) by this sign-in
            self._audit.done(principal, "create", "Namespace", namespace, namespace)
        return principal, namespace

    def from_session(self, user_id: object) -> Principal:
        """Raises UnauthenticatedError when the session names no (remaining) user."""
        if not isinstance(user_id, int):
            raise UnauthenticatedError("sign in first")
        with self._sessions(read_only=True) as session:
            user = UserStore(session).get(user_id)
            if user is None:
                raise UnauthenticatedError("sign in first")
            return self._active(user)

    def from_token(self, token: str) -> Principal:
        """Raises UnauthenticatedError for an unknown, revoked or expired token.

        One query per request, nothing cached: a revoked token (deleted) or user (revoked_at) is
        refused from the very next request on.
        """
        now = datetime.datetime.now(datetime.UTC)
        with self._reads() as connection:
            owner = token_owner(connection, token)
        if owner is None or (owner.expires_at is not None and owner.expires_at <= now):
            raise UnauthenticatedError("the API token is invalid, expired or revoked")
        if owner.revoked_at is not None:
            raise ForbiddenError("your access to Kuberth was revoked by an operator")
        if owner.last_used_at is None or now - owner.last_used_at >= LAST_USED_EVERY:
            with self._sessions() as session:
                TokenStore(session).mark_used(owner.token_id, now)
        return Principal(
            owner.user_id, owner.login, owner.name, is_admin=owner.user_id in self._admin_ids
        )

    def _active(self, user: User) -> Principal:
        if user.revoked_at is not None:
            raise ForbiddenError("your access to Kuberth was revoked by an operator")
        return self.principal(user)
