"""What the case routes take and give."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fraud.alerts.schemas import AlertView, CommentView
from fraud.common import CardRef, CompanyRef, Id, Strict, Title, UserRef

MAX_ALERTS_PER_REQUEST = 200


def _distinct(ids: list[int]) -> list[int]:
    if len(set(ids)) != len(ids):
        raise ValueError("an alert id is given twice")
    return ids


AlertIds = Annotated[list[Id], Field(min_length=1, max_length=MAX_ALERTS_PER_REQUEST,
                                     description="Alerts of the case's card."), AfterValidator(_distinct)]


class CaseView(BaseModel):
    case_id: int
    title: str
    status: str = Field(description="open, resolved_fraud or resolved_not_fraud")
    company: CompanyRef | None
    card: CardRef
    assignee: UserRef | None
    created_by: UserRef | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolved_by: UserRef | None
    resolution_note: str | None
    alert_count: int
    unresolved_alert_count: int


class CasePage(BaseModel):
    cases: list[CaseView]
    next_cursor: str | None


class CaseDetail(BaseModel):
    case: CaseView
    alerts: list[AlertView] = Field(description="Newest first.")
    comments: list[CommentView] = Field(description="Oldest first.")


class NewCase(Strict):
    card_id: Id
    alert_ids: AlertIds
    title: Title | None = Field(default=None, description="Default: the card and how many alerts.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"card_id": 42, "alert_ids": [101, 102], "title": "Night purchases far from home"}]})


class AddAlerts(Strict):
    alert_ids: AlertIds

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"alert_ids": [103]}]})
