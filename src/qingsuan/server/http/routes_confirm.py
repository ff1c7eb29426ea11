"""Routes: connected participants answering IBPS confirmation requests (issue 15)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
