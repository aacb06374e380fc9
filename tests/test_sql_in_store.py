"""SQL lives in gateway/store only (issue 11, point 4).

Services, the API, the CLI, the pipeline and the observability helpers call store
functions; none of them writes a query or calls the driver's query methods itself.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE_STORE = ("gateway/services", "gateway/cli", "gateway/pipeline", "gateway/observe", "api")
_SQL = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|TRUNCATE|COPY|LISTEN|NOTIFY"
    r"|VACUUM|ANALYZE|LOCK)\b"
)
# asyncpg's query methods: a call to one of these is a query written here.
_QUERY_METHODS = frozenset(
    {
        "fetch",
        "fetchrow",
        "fetchval",
        "execute",
        "executemany",
        "copy_records_to_table",
        "copy_to_table",
        "copy_from_query",
        "copy_from_table",
        "cursor",
    }
)


def _sql_in(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                text = first.value
        if text is not None and _SQL.match(text):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text.strip()[:60]!r}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _QUERY_METHODS
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.func.attr}()")
    return found


def test_no_sql_outside_the_store() -> None:
    found = [
        hit
        for top in OUTSIDE_STORE
        for p in sorted((ROOT / top).rglob("*.py"))
        for hit in _sql_in(p)
    ]
    assert not found, "SQL outside gateway/store:\n" + "\n".join(found)


def test_the_check_sees_the_store_s_sql() -> None:
    # The same scan over the store finds its queries: the check above is not vacuous.
    hits = _sql_in(ROOT / "gateway" / "store" / "org_tree.py")
    assert any("WITH RECURSIVE" in h for h in hits), hits
    assert any(".fetch()" in h for h in hits), hits
