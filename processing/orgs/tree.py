"""Changing a company's org-unit tree: add, rename, move and close units. Callers own the transaction.

The tree is a materialised path per unit ("/1/5/9/"). Moving a unit rewrites the path of the unit
and of every unit below it in one UPDATE; cards, drivers and vehicles keep their unit ids and so
follow their unit without being touched. Limit counters stay with their units: spend already
counted against the old ancestors stays there, the new ancestors count from the move on.

Concurrency: every change of the tree's shape (add, move, close) takes the company's tree lock
first, so two moves cannot build a cycle between them and no unit is added under a parent whose
path is being rewritten. Adding a driver, card or vehicle locks its unit's row (``for_update``),
and closing a unit locks the same row before counting what is in it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from sqlalchemy import String, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.cards.models import Card, CardStatus
from processing.errors import Conflict, ProcessingError
from processing.orgs.models import Driver, OrgUnit, Vehicle, path_ids
from processing.orgs.service import create_org_unit

ACTIVE = "active"
CLOSED = "closed"
# Levels below the root. 30 levels of 19-digit ids still fit the 1000-character path column.
MAX_DEPTH = 30


class OrgTreeCycle(ProcessingError):
    status_code = 422
    code = "org_tree_cycle"
    default_detail = "A unit cannot move under itself or under a unit below it."


class RootUnitFixed(ProcessingError):
    status_code = 422
    code = "root_unit_fixed"
    default_detail = "The root unit stands for the whole company: it cannot move or close."


class OrgTreeTooDeep(ProcessingError):
    status_code = 422
    code = "org_tree_too_deep"
    default_detail = f"An org tree has at most {MAX_DEPTH} levels below the root."


class UnitClosed(Conflict):
    code = "unit_closed"
    default_detail = "The org unit is closed."


@dataclass(frozen=True, slots=True)
class UnitContents:
    """What keeps a unit from closing: open child units and everything still in use in it."""

    open_units: int
    active_drivers: int
    open_cards: int
    active_vehicles: int

    def empty(self) -> bool:
        return not any(asdict(self).values())


class UnitNotEmpty(Conflict):
    code = "unit_not_empty"

    def __init__(self, unit_id: int, contents: UnitContents):
        self.contents = contents
        listed = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in asdict(contents).items() if count)
        super().__init__(f"org unit {unit_id} still has {listed}; move or close them first")

    def body(self) -> dict:
        return {**super().body(), "counts": asdict(self.contents)}


def depth(path: str) -> int:
    """Levels below the root: the root is 0."""
    return len(path_ids(path)) - 1


def common_path(first: str, second: str) -> str:
    """The path of the lowest unit above (or at) both: "/1/2/5/" and "/1/3/" -> "/1/"."""
    shared: list[int] = []
    for a, b in zip(path_ids(first), path_ids(second), strict=False):
        if a != b:
            break
        shared.append(a)
    return "/" + "".join(f"{unit_id}/" for unit_id in shared)


def ensure_open(unit: OrgUnit, what: str) -> None:
    """A closed unit takes nothing new: no child units, drivers, cards or vehicles (409)."""
    if unit.status == CLOSED:
        raise UnitClosed(f"org unit {unit.id} is closed: cannot {what}")


async def serialise(session: AsyncSession, *key: object) -> None:
    """Queue transactions that change the same thing (named by ``key``) one behind another.

    PostgreSQL: a transaction-scoped advisory lock. SQLite needs none: every writing
    transaction there starts with BEGIN IMMEDIATE and so already holds the database's write lock.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    await session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True))))


async def lock_tree(session: AsyncSession, company_id: int) -> None:
    """Taken before any change of a company's tree shape, and before loading the units involved."""
    await serialise(session, "org_tree", company_id)


async def add_unit(session: AsyncSession, *, parent: OrgUnit, name: str) -> OrgUnit:
    """A new open unit under an open parent. Call ``lock_tree`` before loading the parent."""
    ensure_open(parent, "add a unit under it")
    if depth(parent.path) + 1 > MAX_DEPTH:
        raise OrgTreeTooDeep()
    return await create_org_unit(session, company_id=parent.company_id, parent_id=parent.id, name=name)


async def move_unit(session: AsyncSession, *, unit: OrgUnit, new_parent: OrgUnit) -> None:
    """Put ``unit`` (and its whole subtree) under ``new_parent``.

    Call ``lock_tree`` before loading either unit. Units below ``unit`` that this session had
    already loaded keep their old path in memory; the database has the new one.
    """
    if unit.parent_id is None:
        raise RootUnitFixed("the root unit stands for the whole company: it cannot move")
    if new_parent.path.startswith(unit.path):
        raise OrgTreeCycle(f"org unit {new_parent.id} is org unit {unit.id} itself or below it: "
                           "a unit cannot move under itself")
    ensure_open(unit, "move it")
    ensure_open(new_parent, "move a unit under it")
    if unit.parent_id == new_parent.id:
        return
    old_path, new_path = unit.path, f"{new_parent.path}{unit.id}/"
    subtree = (OrgUnit.company_id == unit.company_id, OrgUnit.path.startswith(old_path))
    # A path has two slashes more than its depth: "/1/5/" is depth 1.
    slashes = func.length(OrgUnit.path) - func.length(func.replace(OrgUnit.path, "/", ""))
    deepest = (await session.execute(select(func.max(slashes)).where(*subtree))).scalar_one() - 2
    if deepest - depth(old_path) + depth(new_path) > MAX_DEPTH:
        raise OrgTreeTooDeep(f"moving org unit {unit.id} there would make the tree deeper than "
                             f"{MAX_DEPTH} levels")
    await session.execute(
        update(OrgUnit).where(*subtree)
        .values(path=literal(new_path, String).concat(func.substr(OrgUnit.path, len(old_path) + 1)))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(OrgUnit).where(OrgUnit.id == unit.id).values(parent_id=new_parent.id)
        .execution_options(synchronize_session=False)
    )
    unit.path, unit.parent_id = new_path, new_parent.id


async def unit_contents(session: AsyncSession, unit_id: int) -> UnitContents:
    async def count(statement) -> int:
        return (await session.execute(statement)).scalar_one()

    return UnitContents(
        open_units=await count(select(func.count()).select_from(OrgUnit)
                               .where(OrgUnit.parent_id == unit_id, OrgUnit.status != CLOSED)),
        active_drivers=await count(select(func.count()).select_from(Driver)
                                   .where(Driver.org_unit_id == unit_id, Driver.status == ACTIVE)),
        open_cards=await count(select(func.count()).select_from(Card)
                               .where(Card.org_unit_id == unit_id, Card.status != CardStatus.CLOSED)),
        active_vehicles=await count(select(func.count()).select_from(Vehicle)
                                    .where(Vehicle.org_unit_id == unit_id, Vehicle.status == ACTIVE)),
    )


async def close_unit(session: AsyncSession, *, unit: OrgUnit) -> None:
    """Close an empty unit for good. Call ``lock_tree`` and load the unit ``for_update`` first."""
    if unit.parent_id is None:
        raise RootUnitFixed("the root unit stands for the whole company: it cannot be closed")
    ensure_open(unit, "close it again")
    contents = await unit_contents(session, unit.id)
    if not contents.empty():
        raise UnitNotEmpty(unit.id, contents)
    unit.status = CLOSED
    await session.flush()
