"""The pages' caller: the API's session dependency, flavoured for a browser.

Where the API answers 401, a page sends the visitor to sign in and back. This is the one place
that does; every page that needs a user takes :data:`SignedIn`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kuberth.exceptions import UnauthenticatedError
from kuberth.http.dependencies import ServicesDep, session_principal
from kuberth.services.principal import Principal


class NotSignedInError(Exception):
    """A page asked for without a live session; answered with a redirect to sign in."""

    def __init__(self, target: str) -> None:
        self.target = target


async def _signed_in(request: Request, services: ServicesDep) -> Principal:
    """The session's user (an API token is not read: pages are for browsers).

    Raises:
        NotSignedInError: no session, an ended or idle one.
        ForbiddenError: the user was revoked, or no longer passes the sign-up rules.
    """
    try:
        return await session_principal(request, services)
    except UnauthenticatedError:
        raise NotSignedInError(request.url.path) from None


SignedIn = Annotated[Principal, Depends(_signed_in)]
