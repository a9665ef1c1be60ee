"""Schemathesis against the served OpenAPI document: no input makes the server fail (5xx),
and every answer matches the status codes, media types and schemas the document declares.

Requests go over real HTTP to a node on a test city with some committed history.
The default run tries a few dozen inputs per operation; the ``fuzz`` marker runs many more.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.schemas import BaseSchema

from civicledger.agency.desk import IdentityDesk
from civicledger.agency.ledger import NodeLedger
from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.city import CityDir
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.registry import city_registry
from conftest import digest, make_city


@schemathesis.serializer("application/x-ndjson")
def ndjson(_: object, value: object) -> bytes:
    """Batches are declared as a string (lines of JSON); send whatever was generated as text."""
    return value.encode() if isinstance(value, str) else repr(value).encode()


EXAMPLES = int(os.environ.get("CIVIC_FUZZ_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _desk(node: EmbeddedNode, root: Path) -> IdentityDesk:
    """An identity desk over ``node`` whose city directory has no keys: every staff route
    must refuse, every public one answer."""
    return IdentityDesk(NodeLedger(CityDir(root), node), domain="https://fuzz.example")


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseSchema]:
    root = Path(tmp_path_factory.mktemp("fuzz"))
    city = make_city(root / "city", city_registry())
    with city.open_node() as node:
        for n in range(1, 4):
            node.submit(
                city.tx(
                    city.clerk,
                    "notary",
                    "anchor",
                    {"digest": digest(f"f{n}"), "label": f"f{n}"},
                    nonce=n,
                )
            )
        with BackgroundServer(create_app(node, identity=_desk(node, root / "desk"))) as server:
            yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def operation_labels() -> list[str]:
    """Every operation of the API, read from a document built without a server."""
    return sorted(f"{method.upper()} {path}" for path, item in _spec_paths() for method in item)


def _spec_paths() -> list[tuple[str, dict[str, object]]]:
    root = Path(tempfile.mkdtemp(prefix="civic-spec-"))
    city = make_city(root / "city", city_registry())
    with city.open_node() as node:
        return list(
            create_app(node, identity=_desk(node, root / "desk")).openapi()["paths"].items()
        )


# Driven through Hypothesis directly rather than schemathesis' pytest plugin, whose internals
# break with new pytest releases (it failed on pytest 9.2).
@pytest.mark.parametrize("label", operation_labels())
def test_no_input_breaks_the_api_or_its_declared_contract(
    api_schema: BaseSchema, label: str
) -> None:
    method, path = label.split(" ", 1)
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=0.5)

    call()
