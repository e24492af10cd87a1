"""The security team itself: whom alerts can be assigned to."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from fraud.common import UserRef, security_officers
from processing.api import StateDep
from processing.db.engine import unit_of_work

router = APIRouter(tags=["fraud"])


class OfficerList(BaseModel):
    officers: list[UserRef]


@router.get("/officers", response_model=OfficerList, summary="The active security officers (assignees)")
async def list_officers(state: StateDep) -> OfficerList:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return OfficerList(officers=await security_officers(session))
