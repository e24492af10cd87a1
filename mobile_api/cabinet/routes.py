"""Every route of the fleet cabinet (mounted by mobile_api.routes)."""

from __future__ import annotations

from fastapi import APIRouter

from mobile_api.cabinet import auth, companies
from mobile_api.cabinet.account import endpoints as account
from mobile_api.cabinet.audit_log import endpoints as audit_log
from mobile_api.cabinet.cards import endpoints as cards
from mobile_api.cabinet.exceptions import endpoints as exceptions
from mobile_api.cabinet.limits import endpoints as limits
from mobile_api.cabinet.org import endpoints as org

router = APIRouter()
router.include_router(auth.router)
router.include_router(companies.router)
for area in (companies.company_routes, org.router, cards.router, limits.router, exceptions.router,
             account.router, audit_log.router):
    router.include_router(area)
