"""Types the answer shapes share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

# ISO 8601 with its offset as Python writes it (`+00:00`, not pydantic's `Z`): the answers
# kept this form before they had schemas, and clients may compare the text.
Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda t: t.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
