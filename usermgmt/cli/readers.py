"""The CLI reads import files with the core's readers (``usermgmt.core.formats``)."""

from __future__ import annotations

from usermgmt.core.formats import (
    Source,
    format_from_name,
    read_csv,
    read_json_array,
    read_jsonl,
    sniff_format,
)

__all__ = [
    "Source",
    "format_from_name",
    "read_csv",
    "read_json_array",
    "read_jsonl",
    "sniff_format",
]
