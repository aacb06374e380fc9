from __future__ import annotations

import pytest
import yaml

from gateway.services.fast_yaml import load_yaml

CASES = [
    "a: 1\nb: [1, 2.5, true, no, null, ~, 2026-12-10, '2026-12-10', 0x1F, 010, 1_000, .inf]\n",
    "t: 2026-12-10 10:00:00+08:00\nu: 2026-12-10T10:00:00Z\n",
    'people:\n  - {id: "2020110001", kind: student, cards: ["04A1B2C3D4", 0A0B0C0D]}\n',
    "x: &a {k: v}\ny: *a\n",
    "<<: {a: 1}\nb: 2\n",
    "a: !!str 5\nb: !!int '7'\n",
    "",
    "a:\n  - b\n  -\n  - {}\n  - |\n    block\n",
    "just text",
]


@pytest.mark.parametrize("text", CASES)
def test_same_result_as_pyyaml(text: str) -> None:
    expected = yaml.load(text, Loader=yaml.CSafeLoader)
    got = load_yaml(text)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    "text", ["a: [1, 2", "? [1]\n: 2\n", "---\na: 1\n---\nb: 2\n", "a: *missing\n"]
)
def test_same_errors_as_pyyaml(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as expected:
        yaml.load(text, Loader=yaml.CSafeLoader)
    with pytest.raises(type(expected.value)):
        load_yaml(text)
