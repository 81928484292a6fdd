"""Run tosca-parser on a template Agora has already loaded and checked.

tosca-parser keeps its findings in a module-global ExceptionCollector and its
type definitions in a module-global dict, so every call holds one lock. While
it is held, two of the parser's module attributes are swapped:

- the YAML loader of its imports module, so the parser reads imports only from
  the documents Agora loaded and checked (a fresh copy each time, as the parser
  mutates what it is given), never from disk or the network;
- ExceptionCollector.appendException, to note which node, property, input or
  output the parser was working on when it found each problem (its messages
  often say only '"abc" is not an integer.'), and to stop collecting after
  MAX_FINDINGS (the collector deduplicates in quadratic time).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import toscaparser.imports
from toscaparser.capabilities import Capability
from toscaparser.common.exception import ExceptionCollector, ValidationError
from toscaparser.elements.entity_type import EntityType
from toscaparser.entity_template import EntityTemplate
from toscaparser.functions import Function
from toscaparser.nodetemplate import NodeTemplate
from toscaparser.parameters import Input, Output
from toscaparser.properties import Property
from toscaparser.tosca_template import ToscaTemplate

MAX_FINDINGS = 200
_FRAMES = 40

_LOCK = threading.Lock()
# Every finding reaches the publisher as a Problem; the parser's own log lines would only repeat them.
logging.getLogger("tosca").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Context:
    node: str | None = None
    property: str | None = None
    input: str | None = None
    output: str | None = None
    capability: str | None = None
    template: str | None = None  # a relationship template, group or policy


@dataclass(frozen=True)
class Finding:
    exception: Exception
    context: Context


@dataclass
class CheckResult:
    findings: list[Finding] = field(default_factory=list)
    crash: Exception | None = None  # the parser stopped with an exception of its own
    truncated: bool = False


@dataclass
class _Call:
    served: Mapping[str, Any]
    result: CheckResult
    seen: set[tuple[Any, ...]] = field(default_factory=set)


_current: _Call | None = None


def run_toscaparser(main: dict[Any, Any], imported: Mapping[str, dict[Any, Any]]) -> CheckResult:
    """Validates `main` (imports already rewritten to keys of `imported`) and returns what the parser found."""
    global _current
    result = CheckResult()
    with _LOCK:
        saved_collector = ExceptionCollector.__dict__["appendException"]
        saved_loader = toscaparser.imports.YAML_LOADER
        saved_defs = dict(EntityType.TOSCA_DEF)  # NFV and MEC profiles add their types to it for good
        _current = _Call(served=imported, result=result)
        ExceptionCollector.appendException = staticmethod(_collect)
        toscaparser.imports.YAML_LOADER = _serve
        try:
            ToscaTemplate(path=None, yaml_dict_tpl=plain_copy(main), a_file=True)
        except Exception as exc:  # the parser reports through ValidationError, and sometimes crashes
            if not (isinstance(exc, ValidationError) and result.findings):
                result.crash = exc
        finally:
            ExceptionCollector.appendException = saved_collector
            toscaparser.imports.YAML_LOADER = saved_loader
            ExceptionCollector.stop()
            ExceptionCollector.clear()
            if EntityType.TOSCA_DEF.keys() != saved_defs.keys():
                EntityType.TOSCA_DEF.clear()
                EntityType.TOSCA_DEF.update(saved_defs)
            _current = None
    return result


def plain_copy(value: Any) -> Any:
    """A deep copy of loaded YAML (mappings, lists, scalars), several times faster than copy.deepcopy.

    The parser mutates what it is given (outputs, operation inputs and relationship properties become
    Function objects), and Agora builds its own model from the same data.
    """
    if type(value) is dict:
        return {k: plain_copy(v) for k, v in value.items()}
    if type(value) is list:
        return [plain_copy(v) for v in value]
    return value  # str, int, float, bool, None, date: immutable


def _serve(path: str, a_file: bool = True) -> Any:
    call = _current
    if call is not None and path in call.served:
        return plain_copy(call.served[path])
    # Not a file Agora checked: refuse rather than read it.
    ExceptionCollector.appendException(ImportError(f'Import "{path}" is not valid.'))
    return None


def _collect(exception: Exception) -> None:
    call = _current
    if call is None or not ExceptionCollector.collecting:
        raise exception
    if len(call.result.findings) >= MAX_FINDINGS:
        call.result.truncated = True
        return
    context = _context(sys._getframe(1))
    key = (type(exception), str(exception), context)
    if key not in call.seen:
        call.seen.add(key)
        call.result.findings.append(Finding(exception, context))
    if not ExceptionCollector.contains(exception):
        exception.trace = []  # type: ignore[attr-defined]  # the parser's report reads it; a stack is not needed
        ExceptionCollector.exceptions.append(exception)


def _context(frame: FrameType | None) -> Context:
    """What the parser was working on: the innermost node, property, input and output on the stack.

    Only `self` of each frame, and the `input`/`output` loop variables: other locals can be left over
    from an earlier loop in the same function and would point at the wrong place.
    """
    found: dict[str, str] = {}
    depth = 0
    while frame is not None and depth < _FRAMES:
        local = frame.f_locals
        for key in ("self", "input", "output"):
            obj = local.get(key)
            if obj is not None:
                _note(obj, found)
        frame = frame.f_back
        depth += 1
    return Context(
        node=found.get("node"),
        property=found.get("property"),
        input=found.get("input"),
        output=found.get("output"),
        capability=found.get("capability"),
        template=found.get("template"),
    )


def _note(obj: object, found: dict[str, str]) -> None:
    name = getattr(obj, "name", None)
    if isinstance(obj, Function):
        context = obj.context
        if isinstance(context, NodeTemplate):
            _note(context, found)
        return
    if not isinstance(name, str):
        return
    if isinstance(obj, Property):
        found.setdefault("property", name)
    elif isinstance(obj, NodeTemplate):
        found.setdefault("node", name)
    elif isinstance(obj, Input):
        found.setdefault("input", name)
    elif isinstance(obj, Output):
        found.setdefault("output", name)
    elif isinstance(obj, Capability):
        found.setdefault("capability", name)
    elif isinstance(obj, EntityTemplate):
        found.setdefault("template", name)
