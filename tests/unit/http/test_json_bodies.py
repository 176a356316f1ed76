"""JSON bodies are parsed with a bound on nesting, without recursion of our own."""

from __future__ import annotations

import pytest

from kuberth.http.json_bodies import MAX_DEPTH, NestedTooDeeplyError, loads


def nested(levels: int, opener: str = "[", closer: str = "]") -> str:
    return opener * levels + closer * levels


def test_a_body_at_the_limit_parses() -> None:
    value = loads(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 1):
        (value,) = value
    assert value == []


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 900, 10_000, 200_000])
def test_a_deeper_array_is_refused_naming_the_limit(levels: int) -> None:
    with pytest.raises(NestedTooDeeplyError, match=f"more than {MAX_DEPTH} levels"):
        loads(nested(levels))


def test_a_deep_object_inside_an_ordinary_one_is_refused() -> None:
    deep = '{"a":' * 900 + "1" + "}" * 900
    body = f'{{"apiVersion": "apps/v1", "kind": "Deployment", "spec": {deep}}}'
    with pytest.raises(NestedTooDeeplyError):
        loads(body)


def test_wide_bodies_are_not_deep() -> None:
    body = "[" + ",".join(['[1, {"a": [2]}]'] * 50_000) + "]"
    assert len(loads(body)) == 50_000


def test_not_json_is_still_a_plain_value_error() -> None:
    with pytest.raises(ValueError, match="Expecting") as error:
        loads("{nope")
    assert not isinstance(error.value, NestedTooDeeplyError)
