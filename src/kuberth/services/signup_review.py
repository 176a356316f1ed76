"""The sign-up rules, checked again after sign-in: who no longer passes them loses access.

A verdict is kept per user (``users.signup_checked_at``, in the database, so every replica shares
it) and is good for ``interval`` seconds:

- at use (an API token, a session): the login rules are asked every time (no GitHub call); a
  stale verdict that needs org or team membership is asked of GitHub with the operator's
  membership token, by one request only (a conditional update claims the turn);
- in the leader's sweep (after each reconcile pass and every ``interval / 3`` seconds): every
  user not revoked, the same way, so kubeconfigs and running apps (which never pass through
  Kuberth) are covered too.

A user who fails is revoked like an operator's revoke (sessions ended, tokens refused, kubeconfig
service accounts and RoleBindings removed, apps scaled to zero), recorded in the audit log with
the actor ``kuberth`` and the detail ``sign-up rules``, and marked ``signup-rules``: passing the
rules at a later sign-in gives the access (and the apps) back. An operator's revoke is never
undone by a sign-in. GitHub not answering (down, slow, refusing the token) is no verdict: the last
one stands and is asked again after ``retry_after`` seconds.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

import anyio
from sqlalchemy.orm import Session

from kuberth.exceptions import ForbiddenError, KuberthError
from kuberth.services.admin import AdminService
from kuberth.services.audit import AuditService
from kuberth.services.principal import Principal
from kuberth.services.reconciler import Stop
from kuberth.services.signup import SignupRules
from kuberth.storage.database.engine import AsyncSessions
from kuberth.storage.database.users import (
    BY_SIGNUP_RULES,
    NamespaceStore,
    Reviewable,
    UserStore,
)
from kuberth.storage.database.web_sessions import WebSessionStore
from kuberth.storage.github import GitHubMembership

log = logging.getLogger(__name__)

#: The audit log's actor for what Kuberth does on its own.
KUBERTH = Principal(0, "kuberth", None, is_admin=True)
REASON = "sign-up rules"
NO_LONGER_ALLOWED = "you no longer pass this Kuberth's sign-up rules: sign in again if you do"


@dataclass
class SweepReport:
    checked: int = 0  # verdicts asked of GitHub
    revoked: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)  # GitHub gave no answer: asked again later
    stopped: bool = False  # cut short (shutdown, or leadership lost); the next sweep goes on


class SignupReview:
    def __init__(
        self,
        *,
        asessions: AsyncSessions,
        rules: SignupRules,
        membership: GitHubMembership | None,
        admin: AdminService,
        audit: AuditService,
        interval: float,
        retry_after: float = 60.0,
    ) -> None:
        self._asessions = asessions
        self._rules = rules
        self._membership = membership
        self._admin = admin
        self._audit = audit
        self.interval = interval
        self._retry_after = min(retry_after, interval)

    def _stale(self, checked_at: datetime.datetime | None, now: datetime.datetime) -> bool:
        return checked_at is None or (now - checked_at).total_seconds() >= self.interval

    def due(self, login: str, checked_at: datetime.datetime | None) -> bool:
        """Whether :meth:`aat_use` would do I/O now (ask GitHub, or revoke): callers skip it
        otherwise (it would return at once)."""
        verdict = self._rules.local_verdict(login)
        if verdict is None:
            now = datetime.datetime.now(datetime.UTC)
            return self._membership is not None and self._stale(checked_at, now)
        return verdict is False

    def fresh_until(
        self, login: str, checked_at: datetime.datetime | None
    ) -> datetime.datetime | None:
        """Until when :meth:`aat_use` surely returns at once for a user it lets in: when their
        membership verdict goes stale (None: the login rules decide, or membership is never
        asked after sign-in)."""
        if self._rules.local_verdict(login) is not None or self._membership is None:
            return None
        if checked_at is None:
            return datetime.datetime.now(datetime.UTC)
        return checked_at + datetime.timedelta(seconds=self.interval)

    async def aat_use(
        self, github_id: int, login: str, checked_at: datetime.datetime | None
    ) -> None:
        """Called for every authenticated request whose verdict :meth:`due` says needs I/O; asks
        GitHub only when the verdict is stale. GitHub, the database and Kubernetes are awaited, no
        thread is held. Shielded from cancellation once begun: a request gone away does not leave
        a claimed turn unanswered or a revoke without its audit record.

        Raises:
            ForbiddenError: the user no longer passes the rules (and was revoked just now).
        """
        with anyio.CancelScope(shield=True):
            verdict = self._rules.local_verdict(login)
            if verdict is None:
                now = datetime.datetime.now(datetime.UTC)
                if not self._stale(checked_at, now) or self._membership is None:
                    return
                verdict = await self._aask(github_id, login, now)
            if verdict is False:
                try:
                    await self.arevoke(github_id)
                except KuberthError as error:  # refused from now on; the reconciler finishes it
                    log.warning("could not finish revoking %d: %s", github_id, error.message)
        if verdict is False:
            raise ForbiddenError(NO_LONGER_ALLOWED)

    async def _aask(self, github_id: int, login: str, now: datetime.datetime) -> bool | None:
        """GitHub's verdict, if this caller won the turn to ask (None otherwise, or no answer)."""
        stale_before = now - datetime.timedelta(seconds=self.interval)
        async with self._asessions() as session:
            if not await session.run_sync(_claim, github_id, now, stale_before):
                return None  # just checked by someone else
        verdict = await self._rules.arecheck(login, membership=self._membership)
        if verdict is None:
            log.warning(
                "could not re-check the sign-up rules for %s (%d) with GitHub; the last verdict "
                "stands, asked again in %ss",
                login,
                github_id,
                self._retry_after,
            )
            async with self._asessions() as session:  # stale again after retry_after
                await session.run_sync(
                    _checked_at,
                    github_id,
                    stale_before + datetime.timedelta(seconds=self._retry_after),
                )
        return verdict

    async def asweep(self, stop: Stop | None = None) -> SweepReport:
        """Every user not revoked: login rules always, stale membership verdicts with GitHub. On
        the event loop; ``stop`` ends it early, between users, so a user's re-check (and revoke)
        is never cut half-way by it (:meth:`Reconciler.run` turns a cancel into ``stop``)."""
        report = SweepReport()
        async with self._asessions() as session:
            users = await session.run_sync(_reviewable)
        now = datetime.datetime.now(datetime.UTC)
        for user in users:
            if stop is not None and stop.is_set():
                report.stopped = True
                break
            verdict = self._rules.local_verdict(user.login)
            if verdict is None and self._membership is not None:
                if not self._stale(user.signup_checked_at, now):
                    continue
                report.checked += 1
                verdict = await self._aask(user.id, user.login, now)
                if verdict is None:
                    report.unknown.append(user.id)
            if verdict is False:
                try:
                    if await self.arevoke(user.id):
                        report.revoked.append(user.id)
                except KuberthError as error:  # revoked in the database; the rest next pass
                    log.warning("could not finish revoking %d: %s", user.id, error.message)
        return report

    async def run_sweep(self, stop: Stop | None = None) -> None:
        """One sweep, logged; the leader's step (Reconciler.run), which sets ``stop`` when it is
        cancelled."""
        try:
            report = await self.asweep(stop)
        except KuberthError as error:
            log.warning("sign-up rules re-check failed: %s", error.message)
            return
        if report.checked or report.revoked or report.unknown:
            log.info(
                "sign-up rules re-checked%s: %d asked of GitHub, %d revoked, %d without an answer",
                " (stopped early)" if report.stopped else "",
                report.checked,
                len(report.revoked),
                len(report.unknown),
            )

    async def arevoke(self, github_id: int) -> bool:
        """Revoke a user the rules no longer let in, as an operator's revoke would; False when
        someone already revoked them. Sessions end and tokens are refused at once (the database);
        Kubernetes access and apps follow (a failure there is finished by the reconciler, which
        withdraws what a revoked owner still has)."""
        async with self._asessions() as session:
            names = await session.run_sync(_revoked_now, github_id)
        if names is None:
            return False
        log.warning("user %d no longer passes the sign-up rules: access revoked", github_id)
        async with self._audit.achange(
            KUBERTH, "revoke", "User", None, str(github_id), detail=REASON
        ):
            for namespace in names:
                await self._admin.awithdraw(namespace, github_id=github_id)
        return True

    async def areadmit(self, github_id: int) -> None:
        """At a sign-in that passed the rules: a user the rules revoked gets its access and apps
        back (then is marked active, so a failure half-way leaves it revoked, and signing in
        again converges). Anyone else is left as they are; an operator's revoke stays. On the
        event loop."""
        async with self._asessions() as session:
            names = await session.run_sync(_revoked_by_rules, github_id)
        if names is None:
            return
        async with self._audit.achange(
            KUBERTH, "restore", "User", None, str(github_id), detail=REASON
        ):
            for namespace in names:
                await self._admin.agive_back(namespace, github_id=github_id)
            async with self._asessions() as session:
                await session.run_sync(_readmitted, github_id)


def _revoked_by_rules(session: Session, github_id: int) -> list[str] | None:
    """The names of the user's namespaces when the sign-up rules revoked them; None otherwise."""
    user = UserStore(session).get(github_id)
    if user is None or user.revoked_at is None or user.revoked_reason != BY_SIGNUP_RULES:
        return None
    return [n.name for n in NamespaceStore(session).owned_by(github_id)]


def _readmitted(session: Session, github_id: int) -> None:
    """Mark the user active again, unless an operator revoked them meanwhile."""
    store = UserStore(session)
    current = store.get(github_id)
    if current is not None and current.revoked_reason == BY_SIGNUP_RULES:
        store.set_revoked(github_id, revoked=False)


def _claim(
    session: Session, github_id: int, now: datetime.datetime, stale_before: datetime.datetime
) -> bool:
    return UserStore(session).claim_signup_check(github_id, now=now, stale_before=stale_before)


def _checked_at(session: Session, github_id: int, at: datetime.datetime) -> None:
    UserStore(session).set_signup_checked(github_id, at)


def _reviewable(session: Session) -> list[Reviewable]:
    return UserStore(session).reviewable()


def _revoked_now(session: Session, github_id: int) -> list[str] | None:
    """Revoke the user unless someone already did (None then); their sessions ended, the names
    of their namespaces."""
    if not UserStore(session).revoke_if_active(github_id, reason=BY_SIGNUP_RULES):
        return None
    WebSessionStore(session).end_all(github_id)
    return [n.name for n in NamespaceStore(session).owned_by(github_id)]
