"""The API's JSON parser: any body gets an answer, never a 500.

Python's json module recurses per nesting level, so a body nested about a thousand levels deep
raises RecursionError (a 500) before any view runs, even on the token endpoint without login.
Agora's API never takes data nested deeper than a template's inputs, so bodies are refused past
MAX_JSON_DEPTH with a sentence, before the json module is asked.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 64  # the same number as a template's YAML nesting limit
_BRACKETS_AND_STRINGS = re.compile(r'[\[\]{}]|"(?:[^"\\]|\\.)*"')


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than `limit` (brackets inside strings do not count)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for token in _BRACKETS_AND_STRINGS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class BoundedJSONParser(JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"The body is not valid {encoding} text; send JSON encoded as UTF-8.") from exc
        if "\x00" in text or "\\u0000" in text.lower():
            # PostgreSQL text cannot hold NUL: a lookup or a save with one was a DataError, a 500.
            raise ParseError("The JSON holds a NUL character (\\u0000), which no field of this API accepts.")
        if json_depth_exceeds(text):
            raise ParseError(f"The JSON nests deeper than {MAX_JSON_DEPTH} levels; no request of this API needs that.")
        try:
            return json.loads(text, parse_constant=_no_constant)
        except RecursionError as exc:  # unreachable after the depth check; kept so nothing can answer 500
            raise ParseError(f"The JSON nests deeper than {MAX_JSON_DEPTH} levels.") from exc
        except ValueError as exc:
            raise ParseError(f"The body is not valid JSON: {exc}.") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
