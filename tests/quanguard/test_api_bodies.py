"""Body refuses a JSON boolean in a number field, whatever the field's spelling of its type
(``int``, ``float``, or either or None), and leaves every other field to pydantic."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from quanguard.api.bodies import Body


class _Query(Body):
    limit: int | None = None
    ratio: float = 0.5
    size: int = Field(default=10, alias="pageSize")
    flag: bool = False
    note: str | None = None


@pytest.mark.parametrize("key", ["limit", "ratio", "pageSize"])
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_in_a_number_field_is_refused(key: str, value: bool) -> None:
    with pytest.raises(ValidationError, match=f"body.{key} must be a number, got {str(value).lower()}"):
        _Query.model_validate({key: value})


def test_numbers_and_other_fields_pass() -> None:
    q = _Query.model_validate({"limit": 3, "ratio": 1, "pageSize": 20, "flag": True, "note": None})
    assert (q.limit, q.ratio, q.size, q.flag) == (3, 1.0, 20, True)
    assert _Query.model_validate({"limit": None}).limit is None
