"""Every router of the mobile API (driver app and fleet cabinet), mounted by processing.app."""

from __future__ import annotations

from fastapi import APIRouter

from mobile_api import auth, clock, invitations
from mobile_api.cabinet import routes as cabinet_routes
from mobile_api.drivers import endpoints as driver_endpoints

router = APIRouter()
router.include_router(clock.router)
router.include_router(auth.router)
router.include_router(invitations.router)
router.include_router(driver_endpoints.router)
router.include_router(cabinet_routes.router)
