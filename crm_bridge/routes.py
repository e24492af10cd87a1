"""Every router of the CRM bridge (inbound CRM API, event replay, payments), mounted by processing.app."""

from __future__ import annotations

from fastapi import APIRouter

from crm_bridge.relay import endpoints as relay_endpoints

router = APIRouter()
router.include_router(relay_endpoints.router)
