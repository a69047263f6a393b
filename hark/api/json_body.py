"""Reading a request body: only a JSON object is a body, its size and depth bounded before parsing.

json.loads recurses once per nesting level, so ~2 KB of `[` raises RecursionError; a 5,000-digit
number raises ValueError (Python's int digit limit); "\\ud800" decodes to a lone surrogate that
cannot be written back as UTF-8. Each would reach the catch-all as a 500. Here the size is checked
first, then the depth by one linear scan (no recursion), and only then the text is parsed, with
duplicate keys, NaN and Infinity refused, so what the models see is plain JSON an object deep.
"""

from __future__ import annotations

import json
from typing import Any


class BodyRefused(ValueError):
    """The body is not one we read; `status` and `code` are what the API answers."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in `text` (strings skipped), by one pass without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise BodyRefused(400, "validation_error", f"The body names {key[:64]!r} twice; send each field once.")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise BodyRefused(400, "validation_error", f"The body is not valid JSON ({name} is not a JSON number).")


def parse_object(text: str, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """The JSON object `text` holds; BodyRefused (413 when too large, else 400) for anything else."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise BodyRefused(
            413, "body_too_large", f"The body is {size} bytes; the most this API reads is {max_bytes} bytes."
        )
    if nesting_depth(text) > max_depth:
        raise BodyRefused(
            400,
            "validation_error",
            f"The body nests more than {max_depth} levels deep; send a JSON object of the documented fields.",
        )
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except BodyRefused:
        raise
    except (ValueError, RecursionError):  # JSONDecodeError, or a number past Python's digit limit
        raise BodyRefused(400, "validation_error", "The body is not valid JSON; send a JSON object.") from None
    if not isinstance(value, dict):
        raise BodyRefused(
            400, "validation_error", f"The body is a JSON {_kind(value)}; send a JSON object of the documented fields."
        )
    try:  # "\ud800" and the like: text that is not Unicode cannot be stored or sent on
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BodyRefused(
            400, "validation_error", "The body holds text that is not valid Unicode (a lone surrogate escape)."
        ) from None
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
