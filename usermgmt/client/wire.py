"""Users as the API sent them, validated into ``UserOut`` only when a field is read.

The API's body for a user is ``UserOut.model_dump(mode="json")`` of the
server's model, and that dump is all the CLI's listings, ``show`` and exports
print. Keeping the decoded JSON and validating it on first attribute access
spares those commands pydantic's import and model building (a large share of
a short remote command's start) while anything that reads a field (the
console, a command that checks ``user.roles``) gets the real, validated model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from usermgmt.core.schemas import UserOut


def _copy(value: Any) -> Any:
    """A fresh copy of decoded JSON (what pydantic's dump returns each call)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class WireUser:
    """A user of a response: ``model_dump(mode="json")`` is the body itself;
    every other attribute is the validated ``UserOut``'s."""

    __slots__ = ("_json", "_model")

    def __init__(self, body: dict[str, Any]) -> None:
        self._json = body
        self._model: UserOut | None = None

    def model(self) -> UserOut:
        if self._model is None:
            from usermgmt.core.schemas import UserOut

            self._model = UserOut.model_validate(self._json)
        return self._model

    def model_dump(self, *, mode: str = "python", **options: Any) -> dict[str, Any]:
        if mode == "json" and not options:
            return _copy(self._json)
        return self.model().model_dump(mode=mode, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model(), name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WireUser):
            other = other.model()
        return self.model() == other

    __hash__ = None  # type: ignore[assignment]  # as a pydantic model

    def __repr__(self) -> str:
        return repr(self.model())


class WireMeta:
    """A page's ``meta``: total, page, limit, total_pages and next_cursor, as sent."""

    __slots__ = ("limit", "next_cursor", "page", "total", "total_pages")

    def __init__(self, body: dict[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, body.get(name))


class WireUserPage:
    """``UserPage`` with its users kept as sent."""

    __slots__ = ("data", "meta")

    def __init__(self, body: dict[str, Any]) -> None:
        self.data = [WireUser(u) for u in body["data"]]
        self.meta = WireMeta(body["meta"])


class WireUserRows:
    """``UserRows``: a page of users without a total."""

    __slots__ = ("data", "next_cursor")

    def __init__(self, data: list[WireUser], next_cursor: str | None) -> None:
        self.data = data
        self.next_cursor = next_cursor
