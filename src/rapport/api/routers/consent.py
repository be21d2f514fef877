"""The consent ledger: a person's consents now and their history, and "may we contact them?"."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["trust"])
