"""Data-subject rights: export everything held about a person, and erase them."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["trust"])
