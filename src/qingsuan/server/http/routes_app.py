"""Routes: the consumer app's phone-sized web page and its JSON (issue 16)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
