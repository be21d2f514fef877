"""Fuzzing: schemathesis sends generated input, valid and invalid, to every operation of the OpenAPI
document, in process, with an admin key, on both backends. No input may produce a 5xx, and every answer
must be one the document promises, with a body that matches its schema.

Each operation is a test of its own, on an empty database. The cases run through Hypothesis directly
(``APIOperation.as_strategy``): schemathesis's pytest loader does not yet run under pytest 9.2.
"""

from __future__ import annotations

import os

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rapport.api import create_app
from rapport.db import Database, connect
from rapport.settings import Settings
from rapport.trust.keys import RefusedKey, authenticate
from rapport.trust.roles import Role
from support.http import PROBLEM_JSON, ok
from support.keys import new_key

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: generated cases per operation, for valid and for invalid input each (RAPPORT_FUZZ_EXAMPLES=500: longer)
MAX_EXAMPLES = int(os.environ.get("RAPPORT_FUZZ_EXAMPLES", "25"))
CI = os.environ.get("CI") == "true"
OFFLINE_SECRET = "fuzz-tests-only-secret-0123456789abcdefghijk"


def _operations() -> list[str]:
    """Every operation of the document, as ``METHOD /path``. The document needs no database."""
    offline = Settings(database_url="sqlite:///never-opened.db", secret_key=OFFLINE_SECRET)
    document = create_app(connect("sqlite://"), offline).openapi()
    return [f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item]


def _describe(exc: BaseException) -> str:
    """The failure and, for a group (several distinct failures), each of its members."""
    if isinstance(exc, BaseExceptionGroup) and not str(exc).startswith("Schemathesis found"):
        return "\n".join(_describe(member) for member in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


class FuzzKey:
    """An admin key for the fuzzer, made again when a fuzzed ``DELETE /v1/keys/{id}`` revoked it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.secret = new_key(db, Role.ADMIN, name="fuzzer")

    def headers(self) -> dict[str, str]:
        with self.db.session() as session:
            try:
                authenticate(session, secret=self.secret)
            except RefusedKey:
                self.secret = new_key(self.db, Role.ADMIN, name="fuzzer")
        return {"Authorization": f"Bearer {self.secret}"}


@pytest.mark.parametrize("label", _operations())
def test_no_input_breaks_an_operation_or_its_documentation(
    label: str, db: Database, settings: Settings
) -> None:
    # The rate limit has a test of its own; here it would only turn later cases into 429s.
    unlimited = settings.model_copy(update={"rate_limit_per_minute": 10**9})
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(db, unlimited))
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    key = FuzzKey(db)
    failures: list[str] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            derandomize=CI,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],  # schemathesis prints the failing request; no shrinking
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=key.headers())
            case.validate_response(response, checks=CHECKS)

        try:
            fuzz()
        except Unsatisfiable:  # no parameters and no body: nothing to make invalid
            assert mode is GenerationMode.NEGATIVE
        except Exception as exc:  # every mode runs, so that one run shows every kind of failure
            failures.append(f"{mode.value} input: {_describe(exc)}")
    assert not failures, "\n\n".join(failures)


def test_every_error_answer_is_documented_as_a_problem(client: TestClient) -> None:
    document = ok(client.get("/openapi.json"))
    operations = [(f"{m.upper()} {p}", o) for p, item in document["paths"].items() for m, o in item.items()]

    for label, operation in operations:
        errors = {status: answer for status, answer in operation["responses"].items() if int(status) >= 400}
        expected = {"422"} | ({"401", "403", "429", "503"} if operation.get("security") else set())
        assert expected <= errors.keys(), label
        assert all(list(answer["content"]) == [PROBLEM_JSON] for answer in errors.values()), label
    assert [label for label, operation in operations if not operation.get("security")] == ["GET /health"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
