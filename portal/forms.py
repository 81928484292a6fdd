"""The portal's forms. They check the shape of what people type; the rules are checked by the
catalogue's services, whose errors are put back next to the fields they concern."""

from __future__ import annotations

from typing import Any

import yaml
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from crane.models import Target
from portal.templatetags.portal import constraint_text

INPUT_PREFIX = "input__"
MAX_YAML_CHARS = 20_000
MAX_NAME_CHARS = 60


def input_field_name(name: str) -> str:
    return f"{INPUT_PREFIX}{name}"


class YamlError(ValueError):
    pass


def load_yaml_values(text: str) -> Any:
    """YAML typed by a person: no aliases (a few lines could otherwise expand to gigabytes)."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise YamlError(_("Aliases (*name) are not accepted; write the values out."))
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = _(" (line %(line)s)") % {"line": mark.line + 1} if mark is not None else ""
        raise YamlError(
            _("This is not valid YAML%(where)s: %(problem)s")
            % {
                "where": where,
                "problem": getattr(exc, "problem", None) or exc,
            }
        ) from None


def dump_yaml_values(values: dict[str, Any]) -> str:
    return yaml.safe_dump(values, sort_keys=True, allow_unicode=True, default_flow_style=False) if values else ""


def _constraints(spec: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for constraint in spec.get("constraints") or []:
        if isinstance(constraint, dict):
            merged.update(constraint)
    return merged


def _numeric_attrs(type_name: str, constraints: dict[str, Any]) -> dict[str, Any]:
    """The browser's min and max for a number input; exclusive bounds only for whole numbers."""
    attrs: dict[str, Any] = {}
    low_high = constraints.get("in_range")
    if isinstance(low_high, list | tuple) and len(low_high) == 2:
        attrs["min"], attrs["max"] = low_high
    if "greater_or_equal" in constraints:
        attrs["min"] = constraints["greater_or_equal"]
    if "less_or_equal" in constraints:
        attrs["max"] = constraints["less_or_equal"]
    if type_name == "integer":
        if isinstance(constraints.get("greater_than"), int):
            attrs["min"] = constraints["greater_than"] + 1
        if isinstance(constraints.get("less_than"), int):
            attrs["max"] = constraints["less_than"] - 1
    return {k: v for k, v in attrs.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _text_attrs(constraints: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if isinstance(constraints.get("length"), int):
        attrs["minlength"] = attrs["maxlength"] = constraints["length"]
    if isinstance(constraints.get("min_length"), int):
        attrs["minlength"] = constraints["min_length"]
    if isinstance(constraints.get("max_length"), int):
        attrs["maxlength"] = constraints["max_length"]
    if isinstance(constraints.get("pattern"), str):
        attrs["pattern"] = constraints["pattern"]
    return attrs


def input_field(name: str, spec: dict[str, Any]) -> forms.Field:
    """A form field for one template input: its type's control, the browser's checks, its default."""
    type_name = str(spec.get("type", "string"))
    constraints = _constraints(spec)
    secret = bool(spec.get("secret"))
    has_default = bool(spec.get("has_default", spec.get("default") is not None))
    required = bool(spec.get("required", True)) and not has_default
    rules = "; ".join(constraint_text(c) for c in spec.get("constraints") or [] if isinstance(c, dict))
    help_text = " ".join(part for part in (str(spec.get("description") or ""), rules and f"({rules})") if part)
    initial = None if secret else spec.get("default")
    common: dict[str, Any] = {"label": name, "required": required, "help_text": help_text}

    if secret:
        attrs = {"autocomplete": "new-password", **_text_attrs(constraints)}
        if has_default:
            common["help_text"] = " ".join(
                part for part in (help_text, str(_("Leave empty to keep the publisher's default."))) if part
            )
        return forms.CharField(widget=forms.PasswordInput(attrs=attrs, render_value=False), strip=False, **common)
    valid_values = constraints.get("valid_values")
    if isinstance(valid_values, list | tuple) and valid_values:
        choices: list[tuple[str, Any]] = [(str(v), str(v)) for v in valid_values]
        if not required:
            choices.insert(0, ("", _("(default)") if has_default else _("(none)")))
        return forms.ChoiceField(choices=choices, initial=None if initial is None else str(initial), **common)
    if type_name == "integer":
        widget = forms.NumberInput(attrs={"step": 1, **_numeric_attrs(type_name, constraints)})
        return forms.IntegerField(widget=widget, initial=initial, **common)
    if type_name == "float":
        widget = forms.NumberInput(attrs={"step": "any", **_numeric_attrs(type_name, constraints)})
        return forms.FloatField(widget=widget, initial=initial, **common)
    if type_name == "boolean":
        yes_no: list[tuple[str, Any]] = [("true", _("Yes")), ("false", _("No"))]
        if not required:
            yes_no.insert(0, ("", _("(default)") if has_default else _("(none)")))
        bool_initial = None if initial is None else ("true" if initial else "false")
        return forms.ChoiceField(choices=yes_no, initial=bool_initial, **common)
    if type_name in ("list", "map"):
        text = yaml.safe_dump(initial, allow_unicode=True, default_flow_style=False) if initial is not None else ""
        common["help_text"] = " ".join(part for part in (help_text, str(_("Written in YAML."))) if part)
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), initial=text.strip(), **common)
    attrs = _text_attrs(constraints)
    if type_name == "scalar-unit.size":
        attrs.setdefault("placeholder", "512 MB")
    elif type_name == "scalar-unit.time":
        attrs.setdefault("placeholder", "30 s")
    return forms.CharField(widget=forms.TextInput(attrs=attrs), initial=initial, strip=False, **common)


# crane's target states, in words for subscribers (crane's own labels are not translated).
TARGET_STATES = {
    "unknown": _("not checked yet"),
    "reachable": _("reachable"),
    "degraded": _("degraded"),
    "unreachable": _("unreachable"),
}


class TargetChoiceField(forms.ModelChoiceField):
    """A cloud as a subscriber chooses it: its name, where it is, and whether it answers."""

    def label_from_instance(self, obj: Any) -> str:
        where = ", ".join(part for part in (obj.provider, obj.region) if part)
        state = TARGET_STATES.get(obj.state, obj.state)
        return f"{obj.name} ({where}) · {state}" if where else f"{obj.name} · {state}"


class SubscribeForm(forms.Form):
    """Subscribing: the instance's name, its cloud, and the template's inputs (as fields or as YAML)."""

    SOURCE_FORM = "form"
    SOURCE_YAML = "yaml"

    name = forms.CharField(
        label=_("Name of your instance"),
        max_length=MAX_NAME_CHARS,
        help_text=_("Unique in your organization, such as “forms” or “forms-test”."),
    )
    target = TargetChoiceField(
        label=_("Cloud"),
        queryset=Target.objects.none(),
        to_field_name="name",
        required=False,
        empty_label=_("The platform's default cloud"),
    )
    values_yaml = forms.CharField(
        label=_("Values as YAML"),
        required=False,
        max_length=MAX_YAML_CHARS,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text=_("One “name: value” per line. Used instead of the fields above when you subscribe with the YAML."),
    )

    def __init__(
        self,
        *args: Any,
        schema: dict[str, dict[str, Any]],
        targets: QuerySet[Target],
        source: str = SOURCE_FORM,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.schema = schema
        self.source = source if source in (self.SOURCE_FORM, self.SOURCE_YAML) else self.SOURCE_FORM
        target_field = self.fields["target"]
        assert isinstance(target_field, forms.ModelChoiceField)
        target_field.queryset = targets
        for name, spec in sorted(schema.items()):
            self.fields[input_field_name(name)] = input_field(name, spec)
        if not self.is_bound:
            defaults = {n: s.get("default") for n, s in schema.items() if not s.get("secret") and s.get("default")}
            self.fields["values_yaml"].initial = dump_yaml_values(defaults)

    @property
    def has_secrets(self) -> bool:
        return any(spec.get("secret") for spec in self.schema.values())

    def input_fields(self) -> list[forms.BoundField]:
        return [self[input_field_name(name)] for name in sorted(self.schema)]

    def field_for_input(self, name: str) -> str | None:
        """Where an error about this input goes: its field, or the YAML when the YAML was used."""
        if self.source == self.SOURCE_YAML:
            return "values_yaml"
        return input_field_name(name) if name in self.schema else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        values: dict[str, Any] = {}
        if self.source == self.SOURCE_YAML:
            # The YAML is the source: what the fields say (or lack) does not count.
            for name in self.schema:
                self.errors.pop(input_field_name(name), None)
            text = cleaned.get("values_yaml") or ""
            try:
                loaded = load_yaml_values(text) if text.strip() else {}
            except YamlError as exc:
                self.add_error("values_yaml", str(exc))
                return cleaned
            if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
                self.add_error("values_yaml", _("Write one “name: value” per line."))
                return cleaned
            values = loaded
        else:
            for name, spec in self.schema.items():
                key = input_field_name(name)
                if key not in cleaned:
                    continue  # the field's own check failed; its error is shown already
                value = cleaned[key]
                if value is None or value == "":
                    continue  # not given: the template's default applies (or the service says it is required)
                type_name = str(spec.get("type", "string"))
                if type_name in ("list", "map"):
                    try:
                        value = load_yaml_values(value)
                    except YamlError as exc:
                        self.add_error(key, str(exc))
                        continue
                values[name] = value
        cleaned["values"] = values
        return cleaned
