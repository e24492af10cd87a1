"""Every router of the CRM bridge (inbound CRM API, event replay, payments), mounted by processing.app."""

from __future__ import annotations

from fastapi import APIRouter

from crm_bridge import accounting
from crm_bridge.api import endpoints as crm_api
from crm_bridge.relay import endpoints as relay_endpoints
from crm_bridge.topups import endpoints as topups

router = APIRouter()
router.include_router(crm_api.router)
router.include_router(accounting.router)
router.include_router(relay_endpoints.router)
router.include_router(topups.router)
