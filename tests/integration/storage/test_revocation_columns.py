"""Migration 0004 and the statements the sign-up re-check relies on, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from kuberth.storage.database.engine import MIGRATIONS, Database, make_engine, migrate
from kuberth.storage.database.users import BY_OPERATOR, BY_SIGNUP_RULES, UserStore


def test_earlier_revokes_become_an_operators_and_checks_are_claimed_once(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(
            text(
                "INSERT INTO users (id, login, created_at, last_sign_in_at, revoked_at) VALUES "
                "(1, 'gone', :now, :now, :now), (2, 'here', :now, :now, NULL)"
            ),
            {"now": datetime.datetime.now(datetime.UTC)},
        )
    migrate(engine)
    database = Database(engine)
    now = datetime.datetime.now(datetime.UTC)
    with database.session() as session:
        users = UserStore(session)
        assert users.get(1).revoked_reason == BY_OPERATOR
        assert users.get(2).revoked_reason is None
        assert [u.id for u in users.reviewable()] == [2]
        # Never checked: the first claim wins, a second one (another replica) does not.
        before = now - datetime.timedelta(seconds=900)
        assert users.claim_signup_check(2, now=now, stale_before=before)
        assert not users.claim_signup_check(2, now=now, stale_before=before)
        assert users.claim_signup_check(2, now=now, stale_before=now + datetime.timedelta(1))
    with database.session() as session:
        users = UserStore(session)
        assert users.revoke_if_active(2, reason=BY_SIGNUP_RULES)
        assert not users.revoke_if_active(2, reason=BY_SIGNUP_RULES)
        assert not users.revoke_if_active(1, reason=BY_SIGNUP_RULES)  # keeps the operator's
    with database.session() as session:
        users = UserStore(session)
        assert users.get(2).revoked_reason == BY_SIGNUP_RULES
        assert users.get(1).revoked_reason == BY_OPERATOR
        assert users.reviewable() == []
    engine.dispose()
