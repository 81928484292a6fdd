"""The schema documents the error answers each operation really gives (config/schema.py), not only its 2xx."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

ALWAYS = {"429", "503"}  # throttling and a lost database can answer any operation

# (method, path): the error statuses it documents. Each is an answer the operation gives (see the
# request-level tests in test_schema_responses.py), and the ones it cannot give are left out.
REPRESENTATIVE = {
    # An anonymous-friendly, filtered, paginated list: bad filters, a bad token, a page out of range.
    ("get", "/api/v1/services/"): {"400", "401", "404"},
    # A create with a body, roles checked, the version's state checked, size limited.
    ("post", "/api/v1/subscriptions/"): {"400", "401", "403", "409", "413"},
    # A detail route without a query string: nothing to reject with 400.
    ("get", "/api/v1/deployments/{id}/"): {"401", "404"},
    # A deployment action: no body, the deployment's state decides.
    ("post", "/api/v1/deployments/{id}/cancel/"): {"401", "403", "404", "409", "413"},
    # A workflow action.
    ("post", "/api/v1/versions/{id}/submit/"): {"401", "403", "404", "409", "413"},
    # An upload: a multipart body, a service that may be retired, files above the limit.
    ("post", "/api/v1/services/{slug}/versions/"): {"400", "401", "403", "404", "409", "413"},
    # The last administrator cannot be removed.
    ("delete", "/api/v1/memberships/{id}/"): {"401", "403", "404", "409"},
    # A role change on a membership: no state to conflict with.
    ("put", "/api/v1/memberships/{id}/"): {"400", "401", "403", "404", "409", "413"},
    # Operators' log search answers 404 to everyone else.
    ("get", "/api/v1/logs/"): {"400", "401", "404"},
    # Credentials in, a token out: no permission, nothing to find.
    ("post", "/api/v1/auth/token/"): {"400", "401", "403", "413"},
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _errors(operation: dict[str, Any]) -> set[str]:
    return {code for code in operation["responses"] if code >= "400"}


@pytest.mark.parametrize(("method", "path"), sorted(REPRESENTATIVE))
def test_representative_operations_document_their_error_answers(schema: dict[str, Any], method: str, path: str) -> None:
    assert _errors(schema["paths"][path][method]) == REPRESENTATIVE[(method, path)] | ALWAYS


def test_every_operation_documents_429_and_503_with_retry_after(schema: dict[str, Any]) -> None:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for code in ALWAYS:
                answer = operation["responses"].get(code)
                assert answer is not None, f"{method.upper()} {path} lacks {code}"
                assert "Retry-After" in answer.get("headers", {}), f"{method.upper()} {path} {code}"


def test_error_answers_carry_agora_s_error_body(schema: dict[str, Any]) -> None:
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"]
    assert set(error["properties"]) == {"code", "detail", "details"}
    cancel = schema["paths"]["/api/v1/deployments/{id}/cancel/"]["post"]["responses"]
    assert cancel["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    # A 400 is either that body or DRF's field errors.
    create = schema["paths"]["/api/v1/subscriptions/"]["post"]["responses"]
    assert create["400"]["content"]["application/json"]["schema"] == {
        "anyOf": [{"$ref": "#/components/schemas/Error"}, {"$ref": "#/components/schemas/FieldErrors"}]
    }


def test_the_token_endpoint_needs_no_authentication(schema: dict[str, Any]) -> None:
    assert {} in schema["paths"]["/api/v1/auth/token/"]["post"]["security"]


def test_blank_filters_and_page_are_documented_as_allowed(schema: dict[str, Any]) -> None:
    """django-filter and DRF's paginator read `?state=` and `?page=` as not given."""
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/services/"]["get"]["parameters"]}
    assert parameters["state"].get("allowEmptyValue") is True
    assert parameters["page"].get("allowEmptyValue") is True


def test_the_schema_with_its_error_answers_validates(tmp_path: Any) -> None:
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_json_operations_document_json_bodies_and_uploads_multipart(schema: dict[str, Any]) -> None:
    """Form encodings cannot carry the JSON fields (tags, inputs): the API's bodies are JSON, uploads multipart."""
    paths = schema["paths"]
    assert set(paths["/api/v1/services/{slug}/"]["put"]["requestBody"]["content"]) == {"application/json"}
    assert set(paths["/api/v1/subscriptions/"]["post"]["requestBody"]["content"]) == {"application/json"}
    assert set(paths["/api/v1/services/{slug}/versions/"]["post"]["requestBody"]["content"]) == {"multipart/form-data"}
    assert set(paths["/api/v1/validate/"]["post"]["requestBody"]["content"]) == {"multipart/form-data"}


def test_uploads_document_that_an_empty_file_is_refused(schema: dict[str, Any]) -> None:
    upload = schema["components"]["schemas"]["VersionUploadRequest"]["properties"]["file"]
    assert upload["format"] == "binary" and upload["minLength"] == 1
