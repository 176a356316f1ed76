"""Signing in (after GitHub has said who it is) and recognising users on later requests."""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from math import inf
from typing import Protocol

import anyio
from sqlalchemy.orm import Session

from kuberth.exceptions import ForbiddenError, NotFoundError, UnauthenticatedError
from kuberth.services.audit import AuditService
from kuberth.services.principal import Principal
from kuberth.services.provisioning import Provisioner
from kuberth.services.token_cache import TokenCache
from kuberth.storage.database.engine import AsyncReads, AsyncSessions, Sessions
from kuberth.storage.database.models import User
from kuberth.storage.database.tokens import (
    TokenOwner,
    amark_used,
    atoken_owner,
    digest,
)
from kuberth.storage.database.users import BY_SIGNUP_RULES, NamespaceStore, UserStore
from kuberth.storage.database.web_sessions import (
    SessionOwner,
    WebSessionStore,
    aend,
    aend_by_secret,
    aowned_by,
    asession_owner,
    atouch,
)
from kuberth.storage.github import GitHubUser

#: A token's ``last_used_at`` is written at most this often: to the minute is all anyone reads
#: from it, and a write on every API request would make each one a transaction with a commit.
LAST_USED_EVERY = datetime.timedelta(minutes=1)


class Recheck(Protocol):
    """The sign-up rules checked again at use (SignupReview)."""

    async def aat_use(
        self, github_id: int, login: str, checked_at: datetime.datetime | None
    ) -> None:
        """Raises ForbiddenError when the user no longer passes them. On the event loop."""
        ...

    def due(self, login: str, checked_at: datetime.datetime | None) -> bool:
        """Whether ``aat_use`` would do I/O now (else it returns at once)."""
        ...

    def fresh_until(
        self, login: str, checked_at: datetime.datetime | None
    ) -> datetime.datetime | None:
        """Until when ``aat_use`` surely returns at once for a user it lets in (None: as long
        as the rules stand)."""
        ...


#: Why a browser's session is refused: none, another user's, ended or idle alike.
SESSION_ENDED = "your session has ended: sign in again"


def revoked_message(reason: str | None) -> str:
    if reason == BY_SIGNUP_RULES:
        return "your access to Kuberth was revoked: you no longer pass its sign-up rules"
    return "your access to Kuberth was revoked by an operator"


@dataclass(frozen=True)
class WebSessionInfo:
    id: int
    user_agent: str | None
    created_at: datetime.datetime
    last_seen_at: datetime.datetime
    current: bool


class UserService:
    def __init__(
        self,
        *,
        sessions: Sessions,
        asessions: AsyncSessions,
        areads: AsyncReads,
        provisioner: Provisioner,
        admin_ids: frozenset[int],
        audit: AuditService,
        session_idle: datetime.timedelta = datetime.timedelta(hours=12),
        recheck: Recheck | None = None,
        token_cache: TokenCache | None = None,
    ) -> None:
        self._recheck = recheck
        self._token_cache = token_cache
        self._sessions = sessions
        self._asessions = asessions
        self._areads = areads
        self._provisioner = provisioner
        self._admin_ids = admin_ids
        self._audit = audit
        self._session_idle = session_idle

    def principal(self, user: User) -> Principal:
        return Principal(user.id, user.login, user.name, is_admin=user.id in self._admin_ids)

    def sign_in(self, github_user: GitHubUser) -> tuple[Principal, str]:
        """Record the sign-in and make sure the personal namespace is complete; return its name.

        Kubernetes first, database second: if provisioning fails nothing is recorded, and if the
        database fails afterwards the namespace's owner label lets the next sign-in adopt it.
        (The synchronous twin of :meth:`asign_in`, for callers in threads: the scale benchmark
        populates with it, and tests sign users in with it.)

        Raises:
            KuberthError: provisioning failed (the user can sign in again; it converges).
        """
        with self._sessions() as session:
            known_name = _known_personal(session, github_user.id)
        namespace = self._provisioner.provision_personal(
            github_id=github_user.id, login=github_user.login, known=known_name
        )
        with self._sessions() as session:
            principal = self._record_sign_in(session, github_user, namespace, known_name)
        if namespace != known_name:  # a personal namespace made (or adopted) by this sign-in
            self._audit.done(principal, "create", "Namespace", namespace, namespace)
        return principal, namespace

    async def asign_in(self, github_user: GitHubUser) -> tuple[Principal, str]:
        """:meth:`sign_in` on the event loop (the OAuth callback).

        Shielded from cancellation, as a namespace's creation is: cut off half-way (the browser
        gone, a shutdown), it would leave a namespace made but not recorded, or recorded with no
        audit record of its making. A later sign-in would adopt the namespace, but the record of
        who made it, and when, would be lost.

        Raises:
            ForbiddenError: the user was revoked.
            KuberthError: provisioning failed (the user can sign in again; it converges).
        """
        with anyio.CancelScope(shield=True):
            async with self._asessions() as session:
                known_name = await session.run_sync(_known_personal, github_user.id)
            namespace = await self._provisioner.aprovision_personal(
                github_id=github_user.id, login=github_user.login, known=known_name
            )
            async with self._asessions() as session:
                principal = await session.run_sync(
                    self._record_sign_in, github_user, namespace, known_name
                )
            if namespace != known_name:  # a personal namespace made (or adopted) by this sign-in
                await self._audit.adone(principal, "create", "Namespace", namespace, namespace)
        return principal, namespace

    def _record_sign_in(
        self, session: Session, github_user: GitHubUser, namespace: str, known_name: str | None
    ) -> Principal:
        """The user upserted, their personal namespace recorded (a renamed one forgotten)."""
        user = UserStore(session).upsert(
            github_id=github_user.id, login=github_user.login, name=github_user.name
        )
        store = NamespaceStore(session)
        if known_name and known_name != namespace:
            store.forget(known_name)
        store.record(name=namespace, owner_id=github_user.id, personal=True)
        return self.principal(user)

    async def astart_session(self, principal: Principal, *, user_agent: str | None) -> str:
        """A new signed-in browser; returns the secret its cookie carries (stored as a digest)."""
        secret = secrets.token_urlsafe(32)
        async with self._asessions() as session:
            await session.run_sync(_add_web_session, principal.github_id, secret, user_agent)
        return secret

    async def afrom_session(self, user_id: object, secret: object) -> Principal:
        """The user of a live session: one that was not ended (sign-out, an operator's revoke,
        the user ending it elsewhere) and was used within the idle timeout.

        Raises:
            UnauthenticatedError: no session, an ended or idle one.
            ForbiddenError: the user was revoked, or no longer passes the sign-up rules.
        """
        if not isinstance(user_id, int) or not isinstance(secret, str):
            raise UnauthenticatedError("sign in first")
        now = datetime.datetime.now(datetime.UTC)
        async with self._areads() as connection:
            owner = await asession_owner(connection, secret)
        if owner is None or owner.user_id != user_id:
            raise UnauthenticatedError(SESSION_ENDED)
        if now - owner.last_seen_at > self._session_idle:
            await self.aend_session(secret)
            raise UnauthenticatedError(SESSION_ENDED)
        await self._aadmit(owner)
        if now - owner.last_seen_at >= LAST_USED_EVERY:
            async with self._asessions() as session:
                await atouch(session, owner.session_id, now)
        return self._principal_of(owner)

    async def aend_session(self, secret: object) -> None:
        """Sign-out: the session ends for every copy of its cookie."""
        if isinstance(secret, str):
            async with self._asessions() as session:
                await aend_by_secret(session, secret)

    async def web_sessions(self, principal: Principal, *, current: object) -> list[WebSessionInfo]:
        """The caller's signed-in browsers, the most recently used first; ``current`` is the
        secret of the asking one's, to mark it."""
        mine = digest(current) if isinstance(current, str) else None
        async with self._areads() as connection:
            rows = await aowned_by(connection, principal.github_id)
        return [
            WebSessionInfo(
                row.id, row.user_agent, row.created_at, row.last_seen_at, row.secret_hash == mine
            )
            for row in rows
        ]

    async def end_web_session(self, principal: Principal, session_id: int) -> None:
        """Raises NotFoundError when it is not one of the caller's sessions."""
        async with self._asessions() as session:
            if not await aend(session, user_id=principal.github_id, session_id=session_id):
                raise NotFoundError(f"session {session_id} not found")

    async def afrom_token(self, token: str) -> Principal:
        """The token's user. A success is kept a few seconds at most (TokenCache), never past
        the token's expiry or the user's next sign-up re-check, and dropped at once by a change
        made on this replica; a refusal is asked of the database every time.

        Raises:
            UnauthenticatedError: an unknown, revoked or expired token.
            ForbiddenError: its user was revoked, or no longer passes the sign-up rules.
        """
        cache, key = self._token_cache, digest(token)
        if cache is not None and (known := cache.get(key)) is not None:
            return known
        epoch = cache.epoch if cache is not None else 0
        now = datetime.datetime.now(datetime.UTC)
        async with self._areads() as connection:
            owner = _live_token(await atoken_owner(connection, token), now)
        await self._aadmit(owner)
        if _use_is_news(owner.last_used_at, now):
            async with self._asessions() as session:
                await amark_used(session, owner.token_id, now)
        principal = self._principal_of(owner)
        if cache is not None:
            cache.put(key, principal, epoch=epoch, valid_for=self._valid_for(owner, now))
        return principal

    def _valid_for(self, owner: TokenOwner, now: datetime.datetime) -> float:
        """Seconds the token's verdict holds without asking again: to its expiry, and to when
        the user's sign-up verdict is to be asked again."""
        ends = [owner.expires_at]
        if self._recheck is not None:
            ends.append(self._recheck.fresh_until(owner.login, owner.signup_checked_at))
        return min(((end - now).total_seconds() for end in ends if end is not None), default=inf)

    async def _aadmit(self, owner: TokenOwner | SessionOwner) -> None:
        """Refuse a revoked user, and one who no longer passes the sign-up rules.

        The re-check (SignupReview.aat_use) is skipped unless it would do I/O: the user's verdict
        is stale (once per interval per user: then it writes to the database and asks GitHub) or
        the user fails the rules (then it revokes them). It is awaited on the event loop
        (GitHub's async client), holding no thread, so a slow GitHub stalls neither other
        requests nor the thread pool.

        Raises:
            ForbiddenError: either.
        """
        if owner.revoked_at is not None:
            raise ForbiddenError(revoked_message(owner.revoked_reason))
        if self._recheck is not None and self._recheck.due(owner.login, owner.signup_checked_at):
            await self._recheck.aat_use(owner.user_id, owner.login, owner.signup_checked_at)

    def _principal_of(self, owner: TokenOwner | SessionOwner) -> Principal:
        owned = owner.owned_namespaces
        return Principal(
            owner.user_id,
            owner.login,
            owner.name,
            is_admin=owner.user_id in self._admin_ids,
            namespaces=frozenset(owned.split(",")) if owned else frozenset(),
        )


def _known_personal(session: Session, github_id: int) -> str | None:
    """The name of the user's recorded personal namespace (None: a first sign-in).

    Raises:
        ForbiddenError: the user was revoked.
    """
    existing = UserStore(session).get(github_id)
    if existing is not None and existing.revoked_at is not None:
        raise ForbiddenError(revoked_message(existing.revoked_reason))
    known = NamespaceStore(session).personal(github_id)
    return known.name if known else None


def _add_web_session(session: Session, user_id: int, secret: str, user_agent: str | None) -> None:
    WebSessionStore(session).add(user_id=user_id, secret=secret, user_agent=user_agent)


def _live_token(owner: TokenOwner | None, now: datetime.datetime) -> TokenOwner:
    """Raises UnauthenticatedError for no such token, or an expired one."""
    if owner is None or (owner.expires_at is not None and owner.expires_at <= now):
        raise UnauthenticatedError("the API token is invalid, expired or revoked")
    return owner


def _use_is_news(last: datetime.datetime | None, now: datetime.datetime) -> bool:
    """Whether a use is to be written: see LAST_USED_EVERY."""
    return last is None or now - last >= LAST_USED_EVERY
