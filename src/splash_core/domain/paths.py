"""A validated path relative to an endpoint's root."""

from __future__ import annotations

import posixpath
import unicodedata

import attrs

from splash_core.domain.errors import InvalidPath

MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4096


def _problem(raw: str) -> str | None:
    if not raw or not raw.strip():
        return "it is empty"
    if any(unicodedata.category(ch) == "Cc" for ch in raw):
        return "it contains a NUL or control character"
    if raw.startswith("/"):
        return "it is absolute; give it relative to the endpoint root"
    if len(raw.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        return f"it is longer than {MAX_PATH_BYTES} bytes"
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if not parts:
        return "it names the endpoint root, not a file or folder"
    for part in parts:
        if part == "..":
            return "it contains '..'"
        if len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES:
            return f"the name {part[:40]!r}... is longer than {MAX_COMPONENT_BYTES} bytes"
    return None


@attrs.frozen(order=True)
class RelPath:
    """A normalised POSIX path relative to an endpoint root.

    Build one with :meth:`parse`; the constructor rejects anything that is not
    already normalised, so a ``RelPath`` in hand is always safe to join.
    """

    value: str = attrs.field()

    @value.validator
    def _check(self, _attribute: attrs.Attribute[str], value: str) -> None:
        problem = _problem(value)
        if problem is not None:
            raise InvalidPath(f"path {value!r} is not a valid relative path: {problem}")
        if posixpath.normpath(value) != value:
            raise InvalidPath(f"path {value!r} is not normalised; build it with RelPath.parse()")

    @classmethod
    def parse(cls, raw: str) -> RelPath:
        """Validate and normalise ``raw``.

        Raises:
            InvalidPath: empty, absolute, containing ``..``, NUL or control
                characters, or with an over-long name.
        """
        if not isinstance(raw, str):
            raise InvalidPath(f"path {raw!r} is not a string")
        problem = _problem(raw)
        if problem is not None:
            raise InvalidPath(f"path {raw!r} is not a valid relative path: {problem}")
        return cls(posixpath.normpath(raw))

    @property
    def parts(self) -> tuple[str, ...]:
        """The path's components."""
        return tuple(self.value.split("/"))

    @property
    def name(self) -> str:
        """The last component."""
        return self.value.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        """The last component without its final suffix."""
        name = self.name
        return name.rsplit(".", 1)[0] if "." in name[1:] else name

    @property
    def parent(self) -> RelPath | None:
        """The containing folder, or None at the top level."""
        head = posixpath.dirname(self.value)
        return RelPath(head) if head else None

    def join(self, *more: str) -> RelPath:
        """A path below this one; each piece is validated too."""
        return RelPath.parse(posixpath.join(self.value, *more))

    def is_relative_to(self, other: RelPath) -> bool:
        """Whether this path is ``other`` or lies below it."""
        return self.value == other.value or self.value.startswith(other.value + "/")

    def __str__(self) -> str:
        return self.value
