"""Routes: a file of customer transfers in one request, booked through the banks' bulk
path (issue 15)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
