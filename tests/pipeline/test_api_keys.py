"""Staff keys through the api: an admin creates, lists and revokes them, and an
analyst key scoped to an institution sees only that institution's activities and
templates (its figures: tests/pipeline/test_stats_api.py)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.pipeline.conftest import Pipeline, assert_error

KEYS = "/v1/admin/api-keys"
ACTIVITIES = "/v1/admin/activities"
TEMPLATES = "/v1/admin/templates"


def _ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def _wheel(institution_id: str | None) -> dict[str, Any]:
    return {
        "id": f"a{uuid.uuid4().hex[:10]}",
        "kind": "wheel",
        "name": f"Wheel of {institution_id}",
        "prizes": [
            {"id": "gold", "name": "Gold", "kind": "item", "weight": 1, "stock": 5},
            {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 1},
        ],
        "fallback_prize_id": "thanks",
        "institution_id": institution_id,
    }


def _template(institution_id: str | None) -> dict[str, Any]:
    return {
        "id": f"tpl-{uuid.uuid4().hex[:10]}",
        "name": "5 off",
        "kind": "fixed",
        "amount_cents": 500,
        "threshold_cents": 2000,
        "validity": {"days_after_claim": 30},
        "limits": {"stock": 10},
        "institution_id": institution_id,
    }


def test_admin_creates_lists_and_revokes_keys(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    admin = tenant.staff_headers
    created = _ok(
        http.post(
            KEYS,
            json={"name": "branch A analyst", "role": "analyst", "institution_id": "branch-a"},
            headers=admin,
        ),
        201,
    )
    key, key_id = created["api_key"], created["key_id"]
    assert key.startswith("ck_") and created["institution_id"] == "branch-a"

    listed = _ok(http.get(KEYS, headers=admin))
    assert [k["key_id"] for k in listed] == [key_id]
    assert "api_key" not in listed[0] and "hash" not in listed[0]
    assert _ok(http.get(ACTIVITIES, headers={"X-Api-Key": key})) == []

    operator = _ok(http.post(KEYS, json={"name": "ops", "role": "operator"}, headers=admin), 201)
    assert_error(
        http.post(
            KEYS, json={"name": "x", "role": "analyst"}, headers={"X-Api-Key": operator["api_key"]}
        ),
        403,
        "forbidden",
    )
    assert_error(
        http.post(
            KEYS,
            json={"name": "x", "role": "operator", "institution_id": "branch-a"},
            headers=admin,
        ),
        422,
        "scope_needs_analyst",
    )

    assert http.delete(f"{KEYS}/{key_id}", headers=admin).status_code == 204
    assert_error(http.get(ACTIVITIES, headers={"X-Api-Key": key}), 401, "invalid_api_key")
    assert_error(http.delete(f"{KEYS}/{key_id}", headers=admin), 404, "api_key_not_found")
    assert [k["role"] for k in _ok(http.get(KEYS, headers=admin))] == ["operator"]
    audit = _ok(http.get("/v1/admin/audit", headers=admin))
    assert {"api_key.created", "api_key.revoked"} <= {e["action"] for e in audit}


def test_scoped_analyst_sees_only_its_institution(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    admin = tenant.staff_headers
    mine = _ok(http.post(ACTIVITIES, json=_wheel("branch-a"), headers=admin), 201)["activity"]
    theirs = _ok(http.post(ACTIVITIES, json=_wheel("branch-b"), headers=admin), 201)["activity"]
    untagged = _ok(http.post(ACTIVITIES, json=_wheel(None), headers=admin), 201)["activity"]
    my_tpl = _ok(http.post(TEMPLATES, json=_template("branch-a"), headers=admin), 201)["template"]
    their_tpl = _ok(http.post(TEMPLATES, json=_template("branch-b"), headers=admin), 201)
    scoped = {
        "X-Api-Key": pipeline.ledger.create_api_key(
            tenant.tenant_id, "analyst", "ana", institution_id="branch-a"
        )
    }

    assert [a["activity"]["id"] for a in _ok(http.get(ACTIVITIES, headers=scoped))] == [mine["id"]]
    assert _ok(http.get(f"{ACTIVITIES}/{mine['id']}", headers=scoped))["activity"]["id"]
    for other in (theirs["id"], untagged["id"]):
        assert_error(http.get(f"{ACTIVITIES}/{other}", headers=scoped), 404, "activity_not_found")
    assert [t["template"]["id"] for t in _ok(http.get(TEMPLATES, headers=scoped))] == [my_tpl["id"]]
    assert_error(
        http.get(f"{TEMPLATES}/{their_tpl['template']['id']}", headers=scoped),
        404,
        "template_not_found",
    )
    assert_error(http.get("/v1/admin/audit", headers=scoped), 403, "scope_is_institution")
    # The tenant-wide admin still sees all three.
    assert len(_ok(http.get(ACTIVITIES, headers=admin))) == 3

    # Re-tagging moves the activity into the scope at once, even while it runs.
    url = f"{ACTIVITIES}/{theirs['id']}"
    for to in ("scheduled", "running"):
        _ok(http.post(f"{url}/transitions", json={"to": to}, headers=admin))
    _ok(http.patch(url, json={"institution_id": "branch-a"}, headers=admin))
    got = _ok(http.get(url, headers=scoped))["activity"]
    assert got["institution_id"] == "branch-a" and got["status"] == "running"
