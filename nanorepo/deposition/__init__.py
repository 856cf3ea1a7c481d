"""Deposition: from instrument files to a published, sealed dataset version."""

from __future__ import annotations

from nanorepo.deposition._deposit import DepositResult, deposit, recover, revise
from nanorepo.deposition._metadata import (
    SCHEMA,
    TECHNIQUES,
    build_record,
    load_metadata_file,
    normalise_technique,
)

__all__ = [
    "SCHEMA",
    "TECHNIQUES",
    "DepositResult",
    "build_record",
    "deposit",
    "load_metadata_file",
    "normalise_technique",
    "recover",
    "revise",
]
