from __future__ import annotations

import datetime

import pytest
import yaml

from orchestrator.tosca.model import Limits
from orchestrator.tosca.safe_yaml import YamlError, load_yaml

LIMITS = Limits()


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [1, 2.5, true, null, ~, '3']\nc: {d: e}\n",
        "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n",
        "m:\n  <<: [{a: 1}, {a: 2, b: 2}]\n  c: 3\n",
        "when: 2024-01-02\nat: 2024-01-02T10:00:00Z\noctal: 0o17\nhex: 0x1f\nsexagesimal: 1:30\n",
        'text: |\n  line one\n  line two\nfolded: >\n  a\n  b\nquoted: "x\\ty"\n',
        "list: &l [1, 2]\nagain: *l\nnested: [[*l, *l], {k: *l}]\n",
        "'<<': literal merge-looking key\nempty:\nexplicit: !!str 12\nint: !!int '7'\n",
        "? complex\n: value\nunicode: città\n",
    ],
)
def test_loads_what_safe_load_loads(text: str) -> None:
    assert load_yaml(text.encode(), limits=LIMITS).data == yaml.safe_load(text)


def test_aliases_share_the_anchored_value_like_pyyaml() -> None:
    data = load_yaml(b"a: &x [1]\nb: *x\n", limits=LIMITS).data
    assert data["a"] is data["b"]


def test_remembers_the_line_of_each_key_and_list_item() -> None:
    doc = load_yaml(b"top:\n  inner:\n    - first\n    - second: 2\n  other: 1\n", limits=LIMITS)
    assert doc.line("top") == 1
    assert doc.line("top", "inner") == 2
    assert doc.line("top", "inner", 1) == 4
    assert doc.line("top", "inner", 1, "second") == 4
    assert doc.line("top", "other") == 5


def test_line_of_a_path_the_file_lacks_is_its_deepest_existing_part() -> None:
    doc = load_yaml(b"top:\n  inner: 1\n", limits=LIMITS)
    assert doc.line("top", "missing", "deeper") == 1
    assert doc.line("absent") is None


def test_a_duplicate_key_is_a_warning_and_the_later_value_wins() -> None:
    doc = load_yaml(b"a: 1\nb: 2\na: 3\n", limits=LIMITS)
    assert doc.data == {"a": 3, "b": 2}
    assert len(doc.warnings) == 1
    assert "'a' appears twice" in doc.warnings[0].message
    assert doc.warnings[0].line == 3


def test_timestamps_load_as_dates() -> None:
    assert load_yaml(b"d: 2024-05-01\n", limits=LIMITS).data["d"] == datetime.date(2024, 5, 1)


@pytest.mark.parametrize(
    ("data", "words", "line"),
    [
        (b"", "empty", None),
        (b"   \n\n", "empty", None),
        (b"# only a comment\n", "no YAML content", None),
        (b"- a\n- b\n", "is a list, not a mapping", 1),
        (b"just text\n", "a single value", 1),
        (b"a: 1\n---\nb: 2\n", "several YAML documents", 2),
        (b"a:\n  b: 1\n c: 2\n", "malformed", 3),
        (b"a: [1, 2\nb: 3\n", "malformed", None),
        (b"a: 1\nb: \xff\xfe\n", "not valid UTF-8", 2),
        (b"a: \x00\n", "character YAML does not allow", 1),
        (b"a: *nowhere\n", "refers to no anchor", 1),
        (b"a: &x [1, *x]\n", "refers to a value that contains it", 1),
        (b"a: !!python/object:os.system {}\n", "tag:yaml.org,2002:python/object:os.system is not allowed", 1),
        (b"a: !!binary aGVsbG8=\n", "is not allowed", 1),
        (b"a: !!set {x}\n", "is not allowed", 1),
        (b"a:\n  <<: 1\n", "merge key", 2),
        (b"? [1, 2]\n: x\n", "keys must be plain values", 1),
    ],
)
def test_refuses_what_is_not_a_template_mapping_with_a_clear_message(data: bytes, words: str, line: int | None) -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(data, limits=LIMITS)
    assert words in caught.value.message
    if line is not None:
        assert caught.value.line == line
    assert not caught.value.limit


def test_refuses_a_file_over_max_bytes_as_a_limit() -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(b"a: " + b"x" * 100, limits=Limits(max_bytes=50))
    assert caught.value.limit
    assert "up to 50 bytes" in caught.value.message


def test_counts_alias_uses() -> None:
    text = "a: &x 1\nb: [" + ", ".join(["*x"] * 11) + "]\n"
    with pytest.raises(YamlError) as caught:
        load_yaml(text.encode(), limits=Limits(max_yaml_aliases=10))
    assert caught.value.limit
    assert "more than 10 aliases" in caught.value.message


def test_billion_laughs_stops_at_the_expansion_limit() -> None:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*l{i - 1}"] * 9)
        lines.append(f"l{i}: &l{i} [{refs}]")
    with pytest.raises(YamlError) as caught:
        load_yaml("\n".join(lines).encode(), limits=LIMITS)
    assert caught.value.limit
    assert "values once aliases are expanded" in caught.value.message


def test_counts_nodes() -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(b"a: [" + b"1, " * 200 + b"1]\n", limits=Limits(max_yaml_nodes=100))
    assert "more than 100 values" in caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 100 + "]" * 100,
        "a: " + "{b: " * 100 + "1" + "}" * 100,
        "- " * 100 + "x",
        "".join(" " * i + "k:\n" for i in range(100)) + " " * 100 + "x\n",
    ],
    ids=["flow-lists", "flow-maps", "block-lists", "indented-maps"],
)
def test_refuses_nesting_deeper_than_the_limit(text: str) -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(text.encode(), limits=LIMITS)
    assert caught.value.limit
    assert "deeper than 64 levels" in caught.value.message


@pytest.mark.parametrize(
    "text",
    ["a: " + "[" * 100_000 + "]" * 100_000, "a: 1\nb: " + "{a: " * 100_000 + "1" + "}" * 100_000],
    ids=["flow-lists", "flow-maps"],
)
def test_deep_flow_nesting_is_refused_by_agora_before_libyaml_reads_it(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some libyaml releases stop deep flow nesting themselves, with their own limit and words (PyYAML
    # 6.0.4 does): Agora's limit must be the one a publisher meets, whichever release is installed.
    from orchestrator.tosca import safe_yaml

    def no_library(*args: object) -> None:
        raise AssertionError("libyaml was asked to read a file Agora's own scan refuses")

    monkeypatch.setattr(safe_yaml, "_Loader", no_library)
    with pytest.raises(YamlError) as caught:
        load_yaml(text.encode(), limits=LIMITS)
    assert caught.value.limit
    assert caught.value.message == "The YAML nests deeper than 64 levels."
    assert caught.value.line == text.count("\n") + 1


@pytest.mark.parametrize(
    "text",
    [
        "a: '" + "[" * 100 + "'\n",
        'a: "' + "{" * 100 + '\\" [[["\n',
        "a: 1 # " + "[" * 100 + "\n",
        "a: don't " + "[" * 30 + "\nb: 'it''s " + "[" * 70 + "'\n",
        "script: |\n  " + "[[ -f x ]] && " * 20 + "true\n",
    ],
    ids=["single-quoted", "double-quoted", "comment", "apostrophes", "block-scalar"],
)
def test_brackets_in_quotes_comments_and_scalars_are_not_nesting(text: str) -> None:
    assert load_yaml(text.encode(), limits=LIMITS).data == yaml.safe_load(text)


def test_nesting_at_the_limit_is_fine() -> None:
    text = "a: " + "[" * 63 + "]" * 63
    assert load_yaml(text.encode(), limits=LIMITS).data["a"] is not None


def test_aliases_cannot_stack_nesting_past_the_limit() -> None:
    text = "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    with pytest.raises(YamlError) as caught:
        load_yaml(text.encode(), limits=LIMITS)
    assert "once aliases are expanded" in caught.value.message


def test_refuses_absurdly_long_numbers() -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(b"a: " + b"1:" * 200 + b"1\n", limits=LIMITS)
    assert "more than 100 characters" in caught.value.message


def test_a_long_plain_string_stays_a_string() -> None:
    text = "1 Main Street, " + "and more " * 500
    assert load_yaml(f"a: {text}\n".encode(), limits=LIMITS).data["a"] == text.strip()


def test_a_long_run_of_number_characters_is_an_overlong_number() -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(b"a: " + b"1_000" * 400 + b"\n", limits=LIMITS)
    assert "more than 100 characters" in caught.value.message
