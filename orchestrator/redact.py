"""Secrets never reach plaintext: what the platform writes about a deployment goes through here first.

Validation refuses a template whose outputs read a secret (orchestrator.tosca.secret_flow). This is
the defence behind that rule, for plans stored before it and for text that quotes a value (a script's
last lines, an error from Docker): the deployment's outputs, its events (and with them the platform's
log lines), its error and its steps' errors are masked when written, so no row holds a secret.

Two rules:
- an output whose expression can carry a secret is replaced whole by MASK, whatever its length;
- in any text, every occurrence of a known secret value (secret inputs given by the subscriber, the
  template's defaults of secret inputs and the literal values of its agora.nodes.Secret nodes) is
  replaced by MASK when the value has at least
  MIN_MASKED_LENGTH characters. A shorter value is too common to mask everywhere (a secret "a" would
  blank every "a" of every message): it stays protected by the first rule and by messages that never
  quote a value.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from config.crypto import decrypt_json
from config.errors import AgoraError
from orchestrator.functions import function_of
from orchestrator.models import Deployment
from orchestrator.tosca import Template
from orchestrator.tosca.secret_flow import SECRET_NODE, secret_sources

MASK = "********"
MIN_MASKED_LENGTH = 4
_TEMPLATES_CACHED = 256  # templates whose secret values a process remembers (keyed by their sha256)
_in_templates: dict[str, tuple[Any, ...]] = {}
_in_templates_lock = threading.Lock()


@dataclass(frozen=True)
class Redactor:
    """Masks the known secret values of one deployment in what is about to be written."""

    values: tuple[str, ...] = ()  # longest first, so a secret containing another is masked whole

    @classmethod
    def of(cls, secrets: Iterable[Any]) -> Redactor:
        forms: set[str] = set()
        for leaf in _leaves(secrets):
            # As written, and as JSON or Python quote it inside a message ('it\'s', "a\"b", 'c:\\d').
            forms |= {leaf, json.dumps(leaf)[1:-1], repr(leaf)[1:-1]}
        kept = (f for f in forms if len(f) >= MIN_MASKED_LENGTH)
        return cls(tuple(sorted(kept, key=lambda f: (-len(f), f))))

    def text(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def data(self, value: Any) -> Any:
        """JSON-like data with every string (and number) that holds a secret masked; keys too."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            return MASK if self.text(str(value)) != str(value) else value
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def redactor_for(deployment: Deployment | str) -> Redactor:
    """The deployment's known secret values; nothing to mask when it has none or they cannot be read."""
    if isinstance(deployment, str):
        found = Deployment.objects.only("secret_inputs", "template_sha256", "template_filename").filter(pk=deployment)
        row = found.first()
        if row is None:
            return Redactor()
        deployment = row
    try:
        given = decrypt_json(deployment.secret_inputs) if deployment.secret_inputs else {}
    except AgoraError:
        given = {}  # a secret that cannot be decrypted cannot be used, so it cannot be written either
    values = list(given.values()) if isinstance(given, dict) else []
    return Redactor.of([*values, *_template_secrets(deployment)])


def _template_secrets(deployment: Deployment) -> tuple[Any, ...]:
    """The secrets the template itself writes: defaults of secret inputs (what a subscriber who set no
    value gets; validation warns about them) and literal values of agora.nodes.Secret nodes."""
    sha = deployment.template_sha256
    with _in_templates_lock:
        if sha in _in_templates:
            return _in_templates[sha]
    template = _template(deployment)
    found: tuple[Any, ...] = ()
    if template is not None:
        defaults = [i.default for i in template.inputs if i.secret and i.has_default]
        literals = [
            n.properties.get("value")
            for n in template.nodes
            if n.is_a(SECRET_NODE) and function_of(n.properties.get("value")) is None
        ]
        found = tuple(v for v in (*defaults, *literals) if v is not None)
    with _in_templates_lock:
        if len(_in_templates) >= _TEMPLATES_CACHED:
            _in_templates.clear()
        _in_templates[sha] = found
    return found


def _template(deployment: Deployment) -> Template | None:
    from orchestrator.execute import StepError, template_of

    try:
        return template_of(deployment)
    except StepError:
        return None


def masked_outputs(
    outputs: Mapping[str, Any], expressions: Mapping[str, Any], deployment: Deployment
) -> dict[str, Any]:
    """Evaluated outputs as they may be stored and shown: an output whose expression (in the stored plan,
    or in the template) can carry a secret is MASK; the others with known secret values masked."""
    template = _template(deployment)
    declared = {o.name: o.value for o in template.outputs} if template else {}
    redactor = redactor_for(deployment)
    shown: dict[str, Any] = {}
    for name, value in outputs.items():
        carries = template is not None and any(
            secret_sources(expression, template) for expression in (expressions.get(name), declared.get(name))
        )
        shown[name] = MASK if carries else redactor.data(value)
    return shown


def _leaves(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield str(value)
        elif isinstance(value, Mapping):
            yield from _leaves(value.values())
        elif isinstance(value, list | tuple):
            yield from _leaves(value)
