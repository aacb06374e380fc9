"""A faster `yaml.safe_load` for large manifests.

PyYAML's C parser is quick, but building Python objects through its
constructor is not: 50,000 people take about ten seconds. This loader walks the
C parser's events itself and resolves plain scalars with PyYAML's own resolver
and constructors (cached, since manifests repeat values), so the result is the
same as `yaml.load(text, CSafeLoader)`. Anything it does not handle (explicit
tags, merge keys, several documents, complex keys) falls back to that loader.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


class _Unsupported(Exception):
    """Something only the full loader handles."""


def load_yaml(text: str) -> Any:
    """Parse one YAML document like `yaml.load(text, CSafeLoader)`; raises yaml.YAMLError."""
    try:
        return _load(text)
    except _Unsupported:
        return yaml.load(text, Loader=_Loader)


_resolver = Resolver()
_constructor = SafeConstructor()


@lru_cache(maxsize=4096)
def _plain_cached(value: str) -> Any:
    return _plain(value)


def _plain(value: str) -> Any:
    tag = _resolver.resolve(yaml.ScalarNode, value, (True, False))
    if tag == _STR:
        return value
    if tag == _MERGE:
        raise _Unsupported
    construct = _constructor.yaml_constructors.get(tag)
    if construct is None:
        raise _Unsupported
    return construct(_constructor, yaml.ScalarNode(tag, value))


def _load(text: str) -> Any:
    parser = _Loader(text)
    try:
        return _walk(parser)
    finally:
        parser.dispose()


def _walk(parser: Any) -> Any:
    anchors: dict[str, Any] = {}
    # Each open collection: [container, pending mapping key or _NO_KEY]
    stack: list[list[Any]] = []
    root: Any = None
    documents = 0
    short = 16  # short plain scalars repeat (kinds, flags): worth the cache

    def add(value: Any) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        top = stack[-1]
        container = top[0]
        if isinstance(container, list):
            container.append(value)
        elif top[1] is _NO_KEY:
            try:
                hash(value)
            except TypeError:
                raise _Unsupported from None
            top[1] = value
        else:
            container[top[1]] = value
            top[1] = _NO_KEY

    while True:
        event = parser.get_event()
        if event is None or isinstance(event, yaml.StreamEndEvent):
            break
        if isinstance(event, yaml.ScalarEvent):
            if event.tag not in (None, "!"):
                raise _Unsupported
            if event.implicit[0]:  # plain, untagged: resolve like PyYAML
                value = event.value
                value = _plain_cached(value) if len(value) <= short else _plain(value)
            else:
                value = event.value
            if event.anchor is not None:
                anchors[event.anchor] = value
            add(value)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if event.tag not in (None, "!"):
                raise _Unsupported
            container: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
            if event.anchor is not None:
                anchors[event.anchor] = container
            add(container)
            stack.append([container, _NO_KEY])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise _Unsupported  # let the full loader report it
            add(anchors[event.anchor])
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _Unsupported
    return root


_NO_KEY = object()
