"""Cabinet routes: audit log."""

from __future__ import annotations

from mobile_api.cabinet.access import company_router

router = company_router(tags=["cabinet: audit log"])
