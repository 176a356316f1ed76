"""Asserting that a service's async method answers as its sync twin does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from kuberth.exceptions import KuberthError

T = TypeVar("T")


def _key(answer: object) -> object:
    if isinstance(answer, KuberthError):
        return type(answer), answer.message, answer.field
    return answer


async def same_answer(
    sync: Callable[[], T], asynchronous: Callable[[], Awaitable[T]]
) -> T | KuberthError:
    """The async twin's answer (a value, or the error a client would see), asserted equal to
    the sync one's: the same value, or an error of the same class, message and field."""
    try:
        first: T | KuberthError = sync()
    except KuberthError as error:
        first = error
    try:
        second: T | KuberthError = await asynchronous()
    except KuberthError as error:
        second = error
    assert _key(first) == _key(second)
    return second
