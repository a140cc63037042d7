"""workbook.plain_yaml: YAML that keeps the key order and writes repeated values out again."""

from __future__ import annotations

import yaml

from workbook.plain_yaml import to_yaml


def test_keys_keep_their_order():
    assert to_yaml({"b": 1, "a": 2}) == "b: 1\na: 2\n"


def test_a_repeated_value_is_written_twice_not_as_an_anchor():
    labels = {"app": "iris"}
    text = to_yaml({"selector": labels, "template": {"labels": labels}})
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text) == {"selector": labels, "template": {"labels": labels}}
