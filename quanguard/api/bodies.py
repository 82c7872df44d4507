"""The base model of the API's JSON request bodies.

JSON may spell a lone UTF-16 surrogate (``"\\ud800"`` without its pair); Python decodes
it into a ``str`` that UTF-8 cannot encode, so such a value could be neither stored,
hashed, written to a file nor looked up. JSON may also spell NUL (``"\\u0000"``), which
PostgreSQL cannot store in text. :class:`Body` refuses a body holding either anywhere
(422, naming the field) before the route runs; the attempt is then recorded by the HTTP
layer like any other malformed request.

Pydantic reads JSON ``true`` as ``1`` in a number field: ``"epsilon": true`` would spend a
privacy budget of 1.0 that the caller never wrote. :class:`Body` refuses a boolean where a
number belongs, the same way.
"""

from __future__ import annotations

import types
from functools import cache
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, model_validator

__all__ = ["Body", "lone_surrogate_at"]


def _bad(text: str) -> bool:
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def lone_surrogate_at(value: object, where: str = "body") -> str | None:
    """The path (``body.where.0``) of the first text in ``value`` (a decoded JSON value)
    holding a lone surrogate or NUL, in a key or a value; None when there is none."""
    if isinstance(value, str):
        return where if _bad(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if _bad(name):
                return where
            found = lone_surrogate_at(item, f"{where}.{name}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = lone_surrogate_at(item, f"{where}.{i}")
            if found is not None:
                return found
    return None


def _numeric(annotation: object) -> bool:
    """Whether a field's type is a number (``int``, ``float``, or either or None)."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(a in (int, float) for a in args)
    return False


@cache
def _number_keys(cls: type[BaseModel]) -> tuple[str, ...]:
    """The JSON keys of a body class's number fields (read once per class)."""
    return tuple(info.alias or name for name, info in cls.model_fields.items()
                 if _numeric(info.annotation))


class Body(BaseModel):
    """A JSON request body: no text in it holds NUL or a lone UTF-16 surrogate, and no
    number field holds a boolean."""

    @model_validator(mode="before")
    @classmethod
    def _no_boolean_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in _number_keys(cls):
                if isinstance(data.get(key), bool):
                    # ValueError: what pydantic turns into a 422 (a TypeError would be a 500)
                    raise ValueError(f"body.{key} must be a number, got "  # noqa: TRY004
                                     f"{str(data[key]).lower()}")
        return data

    @model_validator(mode="before")
    @classmethod
    def _no_lone_surrogates(cls, data: Any) -> Any:
        found = lone_surrogate_at(data)
        if found is not None:
            raise ValueError(f"{found}: text holds NUL or a lone UTF-16 surrogate (\\u0000, "
                             "\\ud800-\\udfff without its pair); send valid Unicode text")
        return data
