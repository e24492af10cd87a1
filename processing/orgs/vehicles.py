"""A company's vehicles: plate, tank capacity, the fuels they run on. Callers own the transaction.

The tank capacity caps every fuel authorization of a card bound to the vehicle, and its fuels
restrict the fuels such a card may buy (car wash and shop goods fit any vehicle).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.errors import Conflict, ProcessingError
from processing.orgs.models import OrgUnit, Vehicle
from processing.orgs.service import create_vehicle
from processing.orgs.tree import ensure_open, serialise
from processing.products import FUELS, Product

ACTIVE = "active"
INACTIVE = "inactive"
VEHICLE_STATUSES = (ACTIVE, INACTIVE)
MAX_PLATE_LENGTH = 20
MAX_TANK_CAPACITY_ML = 2_000_000  # a road tanker's own tank is far smaller; 2 000 l is generous


class InvalidVehicle(ProcessingError):
    status_code = 422
    code = "invalid_vehicle"


class InvalidPlate(InvalidVehicle):
    code = "invalid_plate"
    default_detail = (f"A plate is 1 to {MAX_PLATE_LENGTH} letters, digits and dashes "
                      "(spaces are dropped), e.g. \"A 123 BC 77\".")


class PlateTaken(Conflict):
    code = "plate_taken"


def normalise_plate(raw: str) -> str:
    """ "a 123 bc 77" -> "A123BC77": upper case, no whitespace; letters of any script, digits, dashes."""
    plate = "".join(raw.split()).upper()
    if not 1 <= len(plate) <= MAX_PLATE_LENGTH or not all(ch.isalnum() or ch == "-" for ch in plate):
        raise InvalidPlate()
    return plate


def check_tank_capacity(tank_capacity_ml: int) -> int:
    if not 1 <= tank_capacity_ml <= MAX_TANK_CAPACITY_ML:
        raise InvalidVehicle(f"a tank holds 1 to {MAX_TANK_CAPACITY_ML} ml")
    return tank_capacity_ml


def fuel_list(products: Iterable[str]) -> list[Product]:
    """The fuels a vehicle runs on, each once, in the order given."""
    fuels: list[Product] = []
    for value in products:
        try:
            product = Product(value)
        except ValueError:
            raise InvalidVehicle(f"{value!r} is not a product") from None
        if product not in FUELS:
            raise InvalidVehicle(f"{product.value} is not a fuel; a vehicle's fuels are "
                                 f"{', '.join(sorted(FUELS))}")
        if product not in fuels:
            fuels.append(product)
    return fuels


async def ensure_plate_free(session: AsyncSession, *, company_id: int, plate: str,
                            except_vehicle_id: int | None = None) -> None:
    """One active vehicle per plate in a company, checked under a lock per plate."""
    await serialise(session, "vehicle_plate", company_id, plate)
    statement = select(Vehicle.id).where(Vehicle.company_id == company_id, Vehicle.plate == plate,
                                         Vehicle.status == ACTIVE)
    if except_vehicle_id is not None:
        statement = statement.where(Vehicle.id != except_vehicle_id)
    taken = (await session.execute(statement.limit(1))).scalar_one_or_none()
    if taken is not None:
        raise PlateTaken(f"vehicle {taken} of this company already has the plate {plate}")


async def add_vehicle(session: AsyncSession, *, unit: OrgUnit, plate: str, tank_capacity_ml: int,
                      allowed_products: Iterable[str]) -> Vehicle:
    """A new active vehicle in an open unit (load ``unit`` for update)."""
    ensure_open(unit, "add a vehicle to it")
    plate = normalise_plate(plate)
    fuels = fuel_list(allowed_products)
    await ensure_plate_free(session, company_id=unit.company_id, plate=plate)
    return await create_vehicle(session, company_id=unit.company_id, org_unit_id=unit.id, plate=plate,
                                tank_capacity_ml=check_tank_capacity(tank_capacity_ml), allowed_products=fuels)


async def change_vehicle(
    session: AsyncSession, *, vehicle: Vehicle, plate: str | None = None, tank_capacity_ml: int | None = None,
    allowed_products: Iterable[str] | None = None, unit: OrgUnit | None = None, status: str | None = None,
) -> None:
    """Change what is given; the rest stays. Takes effect on the next authorization."""
    if status is not None and status not in VEHICLE_STATUSES:
        raise InvalidVehicle(f"a vehicle is {' or '.join(VEHICLE_STATUSES)}")
    if unit is not None and unit.id != vehicle.org_unit_id:
        ensure_open(unit, "move a vehicle to it")
        vehicle.org_unit_id = unit.id
    if plate is not None:
        vehicle.plate = normalise_plate(plate)
    if tank_capacity_ml is not None:
        vehicle.tank_capacity_ml = check_tank_capacity(tank_capacity_ml)
    if allowed_products is not None:
        vehicle.allowed_products = [fuel.value for fuel in fuel_list(allowed_products)]
    reactivated = status == ACTIVE and vehicle.status != ACTIVE
    if reactivated:
        ensure_open(await session.get(OrgUnit, vehicle.org_unit_id), "activate a vehicle in it")
    if status is not None:
        vehicle.status = status
    if vehicle.status == ACTIVE and (plate is not None or reactivated):
        await ensure_plate_free(session, company_id=vehicle.company_id, plate=vehicle.plate,
                                except_vehicle_id=vehicle.id)
    await session.flush()
