"""The security team's JSON API under /v1/fraud: alerts, cases, cards, rules, backtests.

Every route but sign-in goes through fraud.access.security_actor (401 without a live session,
403 for any role but ``security``), set on the router itself so a route cannot forget it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from fraud import auth, authorizations, officers
from fraud.access import ERROR_RESPONSES, security_actor
from fraud.alerts.endpoints import router as alerts_router
from fraud.cards.endpoints import router as cards_router
from fraud.cases.endpoints import router as cases_router
from fraud.rules_admin.endpoints import backtests_router
from fraud.rules_admin.endpoints import router as rules_router

PREFIX = "/v1/fraud"

_guarded = APIRouter(prefix=PREFIX, dependencies=[Depends(security_actor)], responses=ERROR_RESPONSES)
for _domain in (alerts_router, cases_router, cards_router, rules_router, backtests_router, authorizations.router,
                officers.router):
    _guarded.include_router(_domain)

router = APIRouter()
router.include_router(auth.router)
router.include_router(_guarded)
