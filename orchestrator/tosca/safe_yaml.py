"""A YAML loader that bounds what a hostile file can cost, and remembers lines.

PyYAML's composers recurse per nesting level (the C one crashes the process on
`[[[[...` a hundred thousand deep) and its safe loader shares aliased nodes, so a
small "billion laughs" file loads fine and explodes in whoever walks it later.
This loader builds the data itself from libyaml's event stream (a flat state
machine), counting depth, nodes after alias expansion and alias uses as it goes,
and stops at the first limit. It accepts the same documents as `yaml.safe_load`,
but refuses recursive aliases, tags outside YAML's core schema and absurd numbers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import events

from orchestrator.tosca.model import Limits, human_size

# The loader PyYAML pairs with libyaml; the pure one is the fallback where libyaml is missing.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}
_NUMBER_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_MAP_TAGS = {None, "!", "tag:yaml.org,2002:map"}
_SEQ_TAGS = {None, "!", "tag:yaml.org,2002:seq"}
_MAX_NUMBER_CHARS = 100  # int() of a huge base-60 literal is quadratic
# Past this length only a number could resolve to anything but a string, and PyYAML's number patterns take
# seconds on megabytes: such a scalar is a string, or (made of number characters) an overlong number.
_LONG_PLAIN = 1000
_NUMBERISH = re.compile(r"[-+0-9_.:eE]*\Z")
_MAX_LINE_DEPTH = 8  # lines are remembered this deep: enough to point at a property's value
_NO_KEY = object()
_MERGE_KEY = object()
# Flow brackets, and what may hide them: quoted scalars and comments (each alternative starts with a
# literal character, so the scan skips everything else at C speed).
_FLOW_TOKENS = re.compile(r"""[\[\]{}]|'[^']*(?:''[^']*)*'|"[^"\\]*(?:\\.[^"\\]*)*"|#[^\n]*""")
_TOKEN_START = frozenset(" \t\r\n[{,")

Path = tuple[Any, ...]
PathLike = str | os.PathLike[str]


class YamlError(Exception):
    """The file is not a YAML mapping Agora can read; `limit` when a safety limit stopped it."""

    def __init__(self, message: str, line: int | None = None, *, limit: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.limit = limit


@dataclass(frozen=True)
class YamlWarning:
    message: str
    line: int | None


@dataclass(frozen=True)
class YamlDocument:
    data: dict[Any, Any]
    lines: Mapping[Path, int]  # a key path (mapping keys and list indexes) → the 1-based line where it starts
    warnings: tuple[YamlWarning, ...] = field(default=())
    nodes: int = 0  # values once aliases are expanded: what a template and its imports share a limit on
    size: int = 0  # bytes

    def line(self, *path: Any) -> int | None:
        """The line of the deepest part of `path` that the file has."""
        for end in range(min(len(path), _MAX_LINE_DEPTH), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None


class _Frame:
    __slots__ = ("anchor", "height", "is_map", "key", "key_line", "line", "merges", "path", "size", "value")

    def __init__(self, value: Any, is_map: bool, path: Path | None, anchor: str | None, line: int | None) -> None:
        self.value = value
        self.line = line
        self.is_map = is_map
        self.path = path  # None below _MAX_LINE_DEPTH
        self.anchor = anchor
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.size = 1
        self.height = 0
        self.merges: list[Any] | None = None


def read_limited(path: PathLike, limits: Limits) -> bytes:
    """Reads at most one byte more than the limit, so an oversized file is refused without being read whole."""
    with open(path, "rb") as f:
        return f.read(limits.max_bytes + 1)


def load_yaml(data: bytes, *, limits: Limits, nodes_before: int = 0) -> YamlDocument:
    """Reads one YAML document whose top level is a mapping, or raises YamlError.

    `nodes_before`: values already loaded from the other files of the same template, which share
    max_yaml_nodes with this one (else a hundred imports could each stop just short of it).
    """
    if len(data) > limits.max_bytes:
        raise YamlError(
            f"The file is {human_size(len(data))}; Agora reads templates up to {human_size(limits.max_bytes)}.",
            limit=True,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlError(
            f"The file is not valid UTF-8 (byte {exc.start} cannot be decoded); save it as UTF-8.", line
        ) from None
    if not text.strip():
        raise YamlError("The file is empty; a TOSCA template starts with tosca_definitions_version.")
    _check_flow_depth(text, limits)
    root, lines, warnings, nodes = _build(text, limits, nodes_before)
    if root is None:
        raise YamlError("The file holds no YAML content; a TOSCA template starts with tosca_definitions_version.")
    if not isinstance(root, dict):
        kind = "a list" if isinstance(root, list) else "a single value"
        raise YamlError(
            f"The file is {kind}, not a mapping; a TOSCA template is a mapping that starts with "
            "tosca_definitions_version.",
            1,
        )
    return YamlDocument(data=root, lines=lines, warnings=tuple(warnings), nodes=nodes - nodes_before, size=len(data))


def _check_flow_depth(text: str, limits: Limits) -> None:
    """Refuses flow collections nested past Agora's limit before libyaml reads them.

    libyaml's scanner reads flow brackets ahead of the events it hands out (looking for simple keys),
    and some releases stop deep flow nesting themselves, with their own limit and message: without
    this scan, which limit a publisher meets would depend on the installed YAML library. Brackets
    inside plain scalars count too, so the scan errs on the side of depth; no real template nests
    anywhere near the limit. It looks at most at twice max_yaml_nodes tokens: past that many
    brackets and quoted scalars the loader refuses the file for its values anyway, and a flood of
    tokens costs a bounded time here.
    """
    most = limits.max_yaml_depth
    if text.count("[") + text.count("{") <= most:
        return
    depth = 0
    pos = 0
    search = _FLOW_TOKENS.search
    for _ in range(2 * limits.max_yaml_nodes):
        token = search(text, pos)
        if token is None:
            return
        start = token.start()
        char = text[start]
        if char in "[{":
            depth += 1
            if depth > most:
                line = text.count("\n", 0, start) + 1
                raise YamlError(f"The YAML nests deeper than {most} levels.", line, limit=True)
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif start and text[start - 1] not in _TOKEN_START:
            pos = start + 1  # a quote or # inside a plain scalar ("don't", "a#b") hides nothing
            continue
        pos = token.end()


def _build(text: str, limits: Limits, nodes_before: int) -> tuple[Any, dict[Path, int], list[YamlWarning], int]:
    loader = _Loader(text)
    try:
        return _Builder(loader, limits, nodes_before).run()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlError(
            f"The YAML is malformed: {what}. Check the indentation, colons and quotes around this line.", line
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise YamlError(
            f"The file contains a character YAML does not allow (code {exc.character!r}); remove it.", line
        ) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"The YAML is malformed: {exc}.") from None
    finally:
        loader.dispose()


class _Builder:
    """Turns the event stream into plain data, one event at a time, never recursing."""

    def __init__(self, loader: yaml.SafeLoader, limits: Limits, nodes_before: int = 0) -> None:
        self.loader = loader
        self.limits = limits
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # name → (value, nodes, height)
        self.open_anchors: set[str] = set()
        self.lines: dict[Path, int] = {}
        self.warnings: list[YamlWarning] = []
        self.nodes = nodes_before
        self.nodes_before = nodes_before
        self.aliases = 0
        self.root: Any = None

    def run(self) -> tuple[Any, dict[Path, int], list[YamlWarning], int]:
        # The hot loop: locals instead of attributes, scalars handled inline (most events are scalars).
        get_event = self.loader.get_event
        resolve = self.loader.resolve
        attach = self._attach
        scalar_event, alias_event = events.ScalarEvent, events.AliasEvent
        map_start, seq_start = events.MappingStartEvent, events.SequenceStartEvent
        map_end, seq_end = events.MappingEndEvent, events.SequenceEndEvent
        max_nodes = self.limits.max_yaml_nodes
        plain_tags: dict[str, str] = {}  # a plain scalar's resolved tag depends on its text alone
        documents = 0
        while True:
            event = get_event()
            kind = type(event)
            line = event.start_mark.line + 1
            if kind is scalar_event:
                self.nodes += 1
                if self.nodes > max_nodes:
                    self._too_many(line)
                text = event.value
                tag = event.tag
                if tag is None or tag == "!":
                    if event.implicit[0] and len(text) > _LONG_PLAIN:
                        tag = "tag:yaml.org,2002:int" if _NUMBERISH.match(text) else _STR
                    elif event.implicit[0]:
                        tag = plain_tags.get(text)
                        if tag is None:
                            tag = plain_tags[text] = resolve(yaml.ScalarNode, text, event.implicit)
                    else:
                        tag = _STR  # quoted, or the non-specific "!": a string, as PyYAML's resolver says
                value = text if tag == _STR else self._scalar(tag, event, line)
                if event.anchor:
                    self.anchors[event.anchor] = (value, 1, 0)
                attach(value, 1, 0, line)
            elif kind is map_start or kind is seq_start:
                self._start(event, kind is map_start, line)
            elif kind is map_end or kind is seq_end:
                self._end()
            elif kind is alias_event:
                self._alias(event, line)
            elif kind is events.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise YamlError(
                        "The file holds several YAML documents (separated by ---); a template is one document.",
                        line,
                    )
            elif kind is events.StreamEndEvent:
                return self.root, self.lines, self.warnings, self.nodes

    def _node_added(self, line: int | None) -> None:
        self.nodes += 1
        if self.nodes > self.limits.max_yaml_nodes:
            self._too_many(line)

    def _too_many(self, line: int | None) -> None:
        most = self.limits.max_yaml_nodes
        if self.nodes_before:
            message = f"The template and the files it imports hold more than {most} YAML values together"
        else:
            message = f"The YAML has more than {most} values"
        raise YamlError(message + " once aliases are expanded.", line, limit=True)

    def _scalar(self, tag: str, event: events.ScalarEvent, line: int | None) -> Any:
        """A scalar that is not a plain string: null, bool, number, timestamp, or a merge key."""
        if tag == _MERGE:
            return _MERGE_KEY
        if tag not in _SCALAR_TAGS:
            if tag == "tag:yaml.org,2002:value":  # a bare "=": PyYAML has no constructor for it either
                return event.value
            raise YamlError(f"The YAML tag {tag} is not allowed in a template; use plain values.", line)
        if tag in _NUMBER_TAGS and len(event.value) > _MAX_NUMBER_CHARS:
            raise YamlError(f"A number has more than {_MAX_NUMBER_CHARS} characters.", line, limit=True)
        node = yaml.ScalarNode(tag, event.value, style=event.style)
        try:
            return self.loader.yaml_constructors[tag](self.loader, node)
        except (ValueError, OverflowError, yaml.YAMLError):
            raise YamlError(
                f"The value {event.value[:40]!r} cannot be read as {tag.rsplit(':', 1)[-1]}.", line
            ) from None

    def _start(self, event: events.CollectionStartEvent, is_map: bool, line: int | None) -> None:
        if len(self.stack) >= self.limits.max_yaml_depth:
            raise YamlError(f"The YAML nests deeper than {self.limits.max_yaml_depth} levels.", line, limit=True)
        self._node_added(line)
        if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
            raise YamlError(f"The YAML tag {event.tag} is not allowed in a template; use plain values.", line)
        parent = self.stack[-1] if self.stack else None
        if parent is None:
            path: Path | None = ()
        elif parent.path is None or len(parent.path) >= _MAX_LINE_DEPTH:
            path = None
        elif parent.is_map:
            key = parent.key
            path = None if key is _NO_KEY or key is _MERGE_KEY else (*parent.path, key)
        else:
            path = (*parent.path, len(parent.value))
            if line is not None:
                self.lines[path] = line
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame({} if is_map else [], is_map, path, event.anchor, line))

    def _end(self) -> None:
        frame = self.stack.pop()
        value = frame.value
        if frame.merges:
            # YAML's merge key: keys written in the mapping win, then earlier merged mappings over later ones.
            merged: dict[Any, Any] = {}
            for source in reversed(frame.merges):
                merged.update(source)
            merged.update(value)
            value = merged
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, frame.size, frame.height)
        self._attach(value, frame.size, frame.height, frame.line)

    def _alias(self, event: events.AliasEvent, line: int | None) -> None:
        name = event.anchor
        if name in self.open_anchors:
            raise YamlError(f"The alias *{name} refers to a value that contains it.", line)
        if name not in self.anchors:
            raise YamlError(f"The alias *{name} refers to no anchor &{name} defined before it.", line)
        self.aliases += 1
        if self.aliases > self.limits.max_yaml_aliases:
            raise YamlError(
                f"The YAML uses more than {self.limits.max_yaml_aliases} aliases (*name).", line, limit=True
            )
        value, size, height = self.anchors[name]
        self.nodes += size
        if self.nodes > self.limits.max_yaml_nodes:
            self._too_many(line)
        if len(self.stack) + height > self.limits.max_yaml_depth:
            raise YamlError(
                f"The YAML nests deeper than {self.limits.max_yaml_depth} levels once aliases are expanded.",
                line,
                limit=True,
            )
        self._attach(value, size, height, line)

    def _attach(self, value: Any, size: int, height: int, line: int | None) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        top.size += size
        if height + 1 > top.height:
            top.height = height + 1
        if not top.is_map:
            if top.path is not None and line is not None and len(top.path) < _MAX_LINE_DEPTH:
                self.lines[(*top.path, len(top.value))] = line
            top.value.append(value)
            return
        if top.key is _NO_KEY:
            if value is not _MERGE_KEY and type(value) is not str:
                try:
                    hash(value)
                except TypeError:
                    raise YamlError("A mapping key is a list or a mapping; keys must be plain values.", line) from None
            top.key = value
            top.key_line = line or 0
            return
        key, top.key = top.key, _NO_KEY
        if key is _MERGE_KEY:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                raise YamlError("The merge key << takes a mapping or a list of mappings.", top.key_line or None)
            if top.merges is None:
                top.merges = []
            top.merges.extend(sources)
            return
        if key in top.value:
            self.warnings.append(
                YamlWarning(f"The key {key!r} appears twice in the same mapping; the later one wins.", top.key_line)
            )
        top.value[key] = value
        if top.path is not None and top.key_line and len(top.path) < _MAX_LINE_DEPTH:
            self.lines[(*top.path, key)] = top.key_line
