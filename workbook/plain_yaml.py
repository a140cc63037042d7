"""YAML as a person would write it, for the stack file and the Kubernetes manifests that chapter 9 writes."""

from __future__ import annotations

import yaml


class PlainDumper(yaml.SafeDumper):
    """A SafeDumper that writes a repeated value out again instead of an `&id001` anchor and `*id001` alias."""

    def ignore_aliases(self, data):
        return True


def to_yaml(data) -> str:
    """YAML as a person would write it: keys in the order given, and no `&id001` anchors for repeated values."""
    return yaml.dump(data, Dumper=PlainDumper, sort_keys=False)
