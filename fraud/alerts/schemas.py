"""What the alert routes take and give."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fraud.authorizations import AuthorizationView
from fraud.common import CardRef, CommentText, CompanyRef, Id, Note, Resolution, Strict, UserRef


class AlertView(BaseModel):
    alert_id: int
    created_at: datetime
    updated_at: datetime
    status: str = Field(description="open, in_progress (assigned), resolved_fraud or resolved_not_fraud")
    severity: str = Field(description="low, medium, high or critical")
    source: str = Field(description="authorization (a rule in the authorization path) or worker")
    rule_code: str
    rule_id: int | None
    rule_version: int | None
    outcome: str = Field(description="What the rule did: alert, review, decline or block_card.")
    summary: str
    details: dict
    company: CompanyRef | None
    card: CardRef | None
    authorization_id: int | None
    terminal_id: int | None
    case_id: int | None
    assignee: UserRef | None
    resolved_at: datetime | None
    resolved_by: UserRef | None
    resolution_note: str | None


class AlertPage(BaseModel):
    alerts: list[AlertView]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page.")


class CommentView(BaseModel):
    comment_id: int
    author: UserRef
    body: str
    created_at: datetime


class AlertDetail(BaseModel):
    alert: AlertView
    authorization: AuthorizationView | None = Field(description="The decision that raised it, with its trace.")
    comments: list[CommentView] = Field(description="Oldest first.")


class AssignRequest(Strict):
    assignee_user_id: Id | None = Field(description="An active security user; null to put the alert back "
                                                    "in the open queue.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"assignee_user_id": 7}]})


class CommentRequest(Strict):
    body: CommentText

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"body": "Called the fleet manager: the driver was on a long-haul trip."}]})


class ResolveRequest(Strict):
    resolution: Resolution
    note: Note

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"resolution": "not_fraud", "note": "Confirmed with the fleet manager: planned trip."}]})
