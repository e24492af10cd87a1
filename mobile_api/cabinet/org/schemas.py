"""What the organisation routes of the cabinet take and give: units, admins, drivers, vehicles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from processing.identity import passwords
from processing.orgs.vehicles import MAX_TANK_CAPACITY_ML
from processing.products import FUELS, Product

# No control characters: PostgreSQL refuses a NUL in text outright, and none belongs in a name.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=_PRINTABLE)]
Id = Annotated[int, Field(ge=1, le=2**62)]
Fuel = StrEnum("Fuel", {product.name: product.value for product in Product if product in FUELS})
Fuels = Annotated[list[Fuel], Field(max_length=len(FUELS),
                                    description="Fuels the vehicle runs on; empty = any fuel.")]
TankCapacity = Annotated[int, Field(ge=1, le=MAX_TANK_CAPACITY_ML, description="Millilitres.")]
Plate = Annotated[str, Field(min_length=1, max_length=40, pattern=_PRINTABLE,
                             description="Upper-cased, spaces dropped: 1 to 20 letters, digits, dashes.")]


class _Change(BaseModel):
    """A PATCH body: what is sent changes, the rest stays; an empty body is refused."""

    @model_validator(mode="after")
    def _something_to_change(self):
        if not any(getattr(self, name) is not None for name in type(self).model_fields):
            raise ValueError("nothing to change: send at least one field")
        return self


# --- org units ---------------------------------------------------------------------------------

class UnitCounts(BaseModel):
    """What is directly in the unit (not below it)."""

    units: int = Field(description="Open child units.")
    drivers: int = Field(description="Active drivers.")
    cards: int = Field(description="Cards not closed.")
    vehicles: int = Field(description="Active vehicles.")


class UnitView(BaseModel):
    unit_id: int
    name: str
    parent_id: int | None = Field(description="Empty for the root, and for the top unit of a sub-admin's view.")
    depth: int = Field(description="Levels below the company's root unit (the root is 0).")
    status: str = Field(description="active or closed.")
    can_manage: bool = Field(description="Whether you may rename, move, close it or set its limits "
                             "(a sub-admin manages what is below their own unit).")
    counts: UnitCounts
    created_at: datetime


class UnitList(BaseModel):
    units: list[UnitView] = Field(description="Your subtree, parents before their children.")


class NewUnit(BaseModel):
    parent_id: Id
    name: Name

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"parent_id": 2, "name": "North-West depot"}
    ]})


class UnitRename(BaseModel):
    name: Name

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Kazan depot"}]})


class UnitMove(BaseModel):
    parent_id: Id = Field(description="The new parent: not the unit itself nor a unit below it.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"parent_id": 2}]})


# --- admin users ---------------------------------------------------------------------------------

class AdminView(BaseModel):
    user_id: int
    login: str
    full_name: str | None
    role: str = Field(description="company_admin or sub_admin.")
    org_unit_id: int | None = Field(description="The root unit for a company admin; the subtree's top "
                                    "for a sub-admin.")
    status: str = Field(description="active or inactive.")
    created_at: datetime


class AdminPage(BaseModel):
    users: list[AdminView]
    next_cursor: str | None


class NewAdmin(BaseModel):
    login: str = Field(min_length=3, max_length=200, pattern=_PRINTABLE, description="E-mail; they sign in with it.")
    full_name: Name
    role: Literal["company_admin", "sub_admin"]
    org_unit_id: Id | None = Field(default=None, description="Required for a sub-admin: the top of the "
                                   "subtree they manage.")
    password: str = Field(min_length=passwords.MIN_PASSWORD_LENGTH, max_length=passwords.MAX_PASSWORD_LENGTH,
                          description="The first password; hand it over and let them change it.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "login": "oleg@volga.example", "full_name": "Oleg Smirnov", "role": "sub_admin", "org_unit_id": 2,
        "password": "correct horse battery staple",
    }]})

    @model_validator(mode="after")
    def _sub_admin_has_a_unit(self):
        if self.role == "sub_admin" and self.org_unit_id is None:
            raise ValueError("a sub-admin needs org_unit_id: the unit whose subtree they manage")
        return self


class AdminChange(_Change):
    org_unit_id: Id | None = Field(default=None, description="A sub-admin's new unit.")
    status: Literal["active", "inactive"] | None = Field(
        default=None, description="inactive ends every session of the user at once.")
    full_name: Name | None = None

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"full_name": "Oleg Smirnov", "status": "active"}
    ]})


# --- drivers -----------------------------------------------------------------------------------

class BoundCard(BaseModel):
    card_id: int
    card: str = Field(description="Masked card number.")
    status: str
    vehicle_id: int | None


class DriverView(BaseModel):
    driver_id: int
    full_name: str
    phone: str
    org_unit_id: int
    status: str = Field(description="active or inactive.")
    has_login: bool = Field(description="Whether the driver has accepted an invitation (can sign in).")
    invitation_expires_at: datetime | None = Field(description="Until when the open invitation can be "
                                                   "accepted; empty if there is none.")
    cards: list[BoundCard] = Field(description="Cards bound to the driver (deactivation keeps them bound).")
    created_at: datetime


class DriverPage(BaseModel):
    drivers: list[DriverView]
    next_cursor: str | None


class NewDriver(BaseModel):
    full_name: Name
    phone: str = Field(min_length=1, max_length=32, description="E.164, e.g. \"+7 900 000-00-01\" "
                       "(spaces, dashes and parentheses are dropped).")
    org_unit_id: Id

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"full_name": "Pyotr Ivanov", "phone": "+7 900 555-12-34", "org_unit_id": 2}
    ]})


_CODE_DESCRIPTION = ("The one-time code the driver types into the app with their phone number to choose "
                     "a password. Shown only in this answer; in production it is sent to the driver's "
                     "phone by SMS instead.")


class InvitationIssued(BaseModel):
    driver_id: int
    invitation_code: str = Field(description=_CODE_DESCRIPTION)
    invitation_expires_at: datetime


class DriverInvited(BaseModel):
    driver: DriverView
    invitation_code: str = Field(description=_CODE_DESCRIPTION)
    invitation_expires_at: datetime


class DriverMove(BaseModel):
    org_unit_id: Id = Field(description="The driver's new unit; their bound cards move with them.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"org_unit_id": 2}]})


class DriverMoved(BaseModel):
    driver: DriverView
    moved_card_ids: list[int]


class DriverDeactivated(BaseModel):
    driver: DriverView
    sessions_ended: int = Field(description="App sign-ins ended.")
    enrollments_revoked: int = Field(description="Phones their cards were on; tokens from them are declined.")


# --- vehicles ------------------------------------------------------------------------------------

class VehicleView(BaseModel):
    vehicle_id: int
    plate: str
    tank_capacity_ml: int
    allowed_products: list[str]
    org_unit_id: int
    status: str = Field(description="active or inactive.")
    created_at: datetime


class VehiclePage(BaseModel):
    vehicles: list[VehicleView]
    next_cursor: str | None


class NewVehicle(BaseModel):
    plate: Plate
    tank_capacity_ml: TankCapacity
    allowed_products: Fuels = Field(default_factory=list)
    org_unit_id: Id

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"plate": "A 123 BC 77", "tank_capacity_ml": 60000, "allowed_products": ["diesel"], "org_unit_id": 2}
    ]})


class VehicleChange(_Change):
    plate: Plate | None = None
    tank_capacity_ml: TankCapacity | None = None
    allowed_products: Fuels | None = None
    org_unit_id: Id | None = None
    status: Literal["active", "inactive"] | None = None

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"tank_capacity_ml": 80000, "allowed_products": ["diesel", "ai95"], "org_unit_id": 2}
    ]})
