"""The authorization matrix, generated from the application's route table (its OpenAPI), so a
cabinet route added later is covered without anyone remembering to add it here.

For every route under /v1/cabinet/companies/{company_id}, called on an object that lives in
North-East (driver Ivan, his card, his vehicle, the North sub-admin...):

- an admin of another company gets 404 (the company does not exist for them);
- the South sub-admin gets 404 or 403 when the route touches an object; a list gets 200 but
  shows nothing of North-East;
- a driver gets 403;

and the database is byte-for-byte the same afterwards.

Each route's request body is its model's own example (every cabinet body model must have one),
with ids replaced by those of the North-East objects. A route with a path parameter or a
required query parameter this test does not know fails loudly: teach it below.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest

from processing.db.engine import unit_of_work
from processing.limits.models import ExceptionStatus, LimitException
from tests.factories import database_dump

COMPANY_ROUTES = "/v1/cabinet/companies/{company_id}"
# Text that only North-East's objects carry: a list answer to the South sub-admin must not contain it.
NORTH_EAST_MARKERS = ("North-East", "Ivan Petrov")


def cabinet_operations(app) -> list[tuple[str, str, dict]]:
    """(method, path template, OpenAPI operation) of every company route of the cabinet."""
    operations = []
    for path, item in app.openapi()["paths"].items():
        if path == COMPANY_ROUTES or path.startswith(COMPANY_ROUTES + "/"):
            for method, operation in item.items():
                if method in {"get", "post", "put", "patch", "delete"}:
                    operations.append((method.upper(), path, operation))
    return operations


async def north_east_exception(state, fleet) -> int:
    async with unit_of_work(state.sessionmaker) as session:
        request = LimitException(
            company_id=fleet.company_id, card_id=fleet.ivan_card_id, driver_id=fleet.ivan_id,
            org_unit_id=fleet.north_east_id, metric="volume", extra_value=100_000, reason="long trip",
            status=ExceptionStatus.PENDING, requested_at=state.clock(),
        )
        session.add(request)
        await session.flush()
        return request.id


def path_ids(fleet, exception_id: int) -> dict[str, int]:
    return {
        "company_id": fleet.company_id, "unit_id": fleet.north_east_id, "card_id": fleet.ivan_card_id,
        "driver_id": fleet.ivan_id, "vehicle_id": fleet.vehicle_id, "user_id": fleet.sub_north.user_id,
        "exception_id": exception_id, "metric": "amount", "period": "day",
    }


OBJECT_PARAMETERS = {"unit_id", "card_id", "driver_id", "vehicle_id", "user_id", "exception_id"}


def body_ids(fleet) -> dict[str, object]:
    return {
        "org_unit_id": fleet.north_east_id, "parent_id": fleet.north_east_id, "driver_id": fleet.ivan_id,
        "vehicle_id": fleet.vehicle_id, "card_id": fleet.ivan_card_id, "user_id": fleet.sub_north.user_id,
        "station_ids": [fleet.world.station_id], "network_ids": [fleet.world.network_id],
    }


def query_values(clock) -> dict[str, str]:
    return {"from": (clock.now - timedelta(days=7)).isoformat(), "to": clock.now.isoformat(),
            "group_by": "unit"}


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _substitute(value, ids: dict):
    if isinstance(value, dict):
        return {key: ids[key] if key in ids else _substitute(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, ids) for item in value]
    return value


def example_body(app, operation: dict, ids: dict) -> tuple[object | None, bool]:
    """The route's example body with North-East's ids, and whether any id was put in."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None, False
    components = app.openapi()["components"]["schemas"]
    schema = _resolve(content["schema"], components)
    examples = schema.get("examples") or content.get("examples")
    assert examples, f"{operation['operationId']}: the request model needs an example (json_schema_extra)"
    example = copy.deepcopy(examples[0] if isinstance(examples, list) else next(iter(examples.values()))["value"])
    body = _substitute(example, ids)
    return body, json.dumps(body) != json.dumps(example)


def build_request(app, fleet, clock, exception_id: int, method: str, template: str, operation: dict):
    ids = path_ids(fleet, exception_id)
    params = {p["name"]: p for p in operation.get("parameters", [])}
    path_values = {}
    for name, param in params.items():
        if param["in"] == "path":
            assert name in ids, f"{method} {template}: no sample id for path parameter {{{name}}}; add one"
            path_values[name] = ids[name]
    query = {}
    known_query = query_values(clock)
    for name, param in params.items():
        if param["in"] == "query" and param.get("required"):
            assert name in known_query, f"{method} {template}: no sample value for required query {name!r}"
            query[name] = known_query[name]
    body, body_targets_object = example_body(app, operation, body_ids(fleet))
    targets_object = bool(set(path_values) & OBJECT_PARAMETERS) or body_targets_object
    return template.format(**path_values), query, body, targets_object


@pytest.fixture
async def matrix(app, state, fleet, clock):
    exception_id = await north_east_exception(state, fleet)
    operations = cabinet_operations(app)
    requests = [(method, template, *build_request(app, fleet, clock, exception_id, method, template, operation))
                for method, template, operation in operations]
    return requests


async def test_the_route_table_has_the_cabinet(app):
    operations = cabinet_operations(app)
    assert len(operations) >= 1
    assert all("{company_id}" in path for _, path, _ in operations)


async def test_every_cabinet_route_refuses_other_tenants_outside_subadmins_and_drivers(http, state, fleet, matrix):
    before = await database_dump(state)
    seen = []
    for method, template, path, query, body, targets_object in matrix:
        where = f"{method} {template}"
        kwargs = {"params": query} | ({"json": body} if body is not None else {})

        reply = await http.request(method, path, headers=fleet.other_admin.headers, **kwargs)
        assert reply.status_code == 404, f"{where} as another company's admin: {reply.status_code} {reply.text}"
        assert reply.json()["error"] == "company_not_found", where

        reply = await http.request(method, path, headers=fleet.ivan.headers, **kwargs)
        assert reply.status_code == 403, f"{where} as a driver: {reply.status_code} {reply.text}"

        reply = await http.request(method, path, headers=fleet.sub_south.headers, **kwargs)
        if targets_object or method != "GET":
            assert reply.status_code in (403, 404), \
                f"{where} as the South sub-admin on a North-East object: {reply.status_code} {reply.text}"
        else:
            assert reply.status_code in (200, 403), f"{where} as the South sub-admin: {reply.status_code} {reply.text}"
            for marker in NORTH_EAST_MARKERS:
                assert marker not in reply.text, f"{where} shows the South sub-admin North-East's {marker!r}"
        seen.append(where)
    assert await database_dump(state) == before, "a refused call changed the database"
    assert len(seen) == len(matrix)
