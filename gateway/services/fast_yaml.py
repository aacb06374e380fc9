"""A faster `yaml.safe_load` for large manifests.

PyYAML's C parser is quick, but building Python objects through its
constructor is not: 50,000 people take about ten seconds. This loader walks the
C parser's events itself and resolves plain scalars with PyYAML's own resolver
and constructors (cached, since manifests repeat values), so the result is the
same as `yaml.load(text, CSafeLoader)`. Anything it does not handle (explicit
tags, merge keys, several documents, complex keys) falls back to that loader.
"""

from __future__ import annotations

from collections.abc import Callable
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
    tree = _Tree()
    handlers = tree.handlers()
    while True:
        event = parser.get_event()
        if event is None or isinstance(event, yaml.StreamEndEvent):
            break
        handler = handlers.get(type(event))
        if handler is not None:  # stream and document ends, and the like, build nothing
            handler(event)
    return tree.root


_SHORT = 16  # short plain scalars repeat (kinds, flags): worth the cache


class _Tree:
    """The document being built from parser events, one handler per kind of event."""

    __slots__ = ("anchors", "documents", "root", "stack")

    def __init__(self) -> None:
        self.anchors: dict[str, Any] = {}
        # Each open collection: [container, pending mapping key or _NO_KEY]
        self.stack: list[list[Any]] = []
        self.root: Any = None
        self.documents = 0

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            yaml.ScalarEvent: self.scalar,
            yaml.MappingStartEvent: self.start,
            yaml.SequenceStartEvent: self.start,
            yaml.MappingEndEvent: self.end,
            yaml.SequenceEndEvent: self.end,
            yaml.AliasEvent: self.alias,
            yaml.DocumentStartEvent: self.document,
        }

    def add(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
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

    def scalar(self, event: Any) -> None:
        if event.tag not in (None, "!"):
            raise _Unsupported
        value = event.value
        if event.implicit[0]:  # plain, untagged: resolve like PyYAML
            value = _plain_cached(value) if len(value) <= _SHORT else _plain(value)
        if event.anchor is not None:
            self.anchors[event.anchor] = value
        self.add(value)

    def start(self, event: Any) -> None:
        if event.tag not in (None, "!"):
            raise _Unsupported
        container: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
        if event.anchor is not None:
            self.anchors[event.anchor] = container
        self.add(container)
        self.stack.append([container, _NO_KEY])

    def end(self, event: Any) -> None:
        self.stack.pop()

    def alias(self, event: Any) -> None:
        if event.anchor not in self.anchors:
            raise _Unsupported  # let the full loader report it
        self.add(self.anchors[event.anchor])

    def document(self, event: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            raise _Unsupported


_NO_KEY = object()
