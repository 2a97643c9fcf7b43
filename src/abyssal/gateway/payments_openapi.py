"""The OpenAPI 3.1 description of /v1, served at /v1/openapi.json."""

from __future__ import annotations

from typing import Any

_AMOUNT = {
    "type": "string",
    "pattern": r"^[0-9]+(\.[0-9]+)?$",
    "description": "decimal string; numbers refused",
}
_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
        "payment": {"$ref": "#/components/schemas/Payment"},
    },
}
_IDEM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "first write wins; a retry replays the stored answer (header Idempotency-Replayed: "
    "true); other parameters: 422; still in flight: 409",
}


def _answers(success: str) -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        success: {
            "description": "done",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Payment"}}},
        },
        "400": {"description": "invalid request (not stored: fix and retry with the same key)", **ref},
        "401": {"description": "missing or unknown bearer token", **ref},
        "409": {"description": "a request with this key is still in flight", **ref},
        "422": {
            "description": "key reused with other parameters, or a business refusal (stored, replays)",
            **ref,
        },
        "503": {"description": "engine busy or unavailable (not stored: retry with the same key)", **ref},
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Abyssal payments API", "version": "1"},
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "one token per tenant, issued by POST /admin/payments/tokens",
            }
        },
        "schemas": {
            "Payment": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "type": {"enum": ["deposit", "withdrawal"]},
                    "status": {
                        "enum": [
                            "pending",
                            "captured",
                            "requested",
                            "held",
                            "sent",
                            "completed",
                            "failed",
                            "canceled",
                        ]
                    },
                    "asset": {"type": "string"},
                    "amount": _AMOUNT,
                    "fee": _AMOUNT,
                    "version": {"type": "integer"},
                    "key": {"type": "string"},
                    "address": {"type": "string"},
                    "method": {"type": "string"},
                    "reference": {"type": "string"},
                    "error": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"},
                },
            },
            "Error": _ERROR,
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/deposits": {
            "post": {
                "summary": "capture a deposit",
                "parameters": [_IDEM],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["asset", "amount"],
                                "properties": {
                                    "asset": {"type": "string"},
                                    "amount": _AMOUNT,
                                    "reference": {"type": "string"},
                                },
                            }
                        }
                    }
                },
                "responses": _answers("201"),
            },
            "get": {"summary": "list deposits (newest first, at most 100)"},
        },
        "/v1/deposits/{id}": {"get": {"summary": "one deposit with its status transitions"}},
        "/v1/withdrawals": {
            "post": {
                "summary": "request a withdrawal (held at once; requested -> held -> sent -> completed)",
                "parameters": [_IDEM],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["asset", "amount", "key"],
                                "properties": {
                                    "asset": {"type": "string"},
                                    "amount": _AMOUNT,
                                    "key": {"type": "string"},
                                    "address": {"type": "string"},
                                },
                            }
                        }
                    }
                },
                "responses": _answers("201"),
            },
            "get": {"summary": "list withdrawals (newest first, at most 100)"},
        },
        "/v1/withdrawals/{id}": {"get": {"summary": "one withdrawal with its status transitions"}},
        "/v1/withdrawals/{id}/cancel": {"post": {"summary": "cancel a requested or held withdrawal"}},
        "/v1/withdraw-keys": {
            "post": {"summary": "name a withdrawal address (asset, key, address, method)"},
            "get": {"summary": "the tenant's withdrawal keys"},
        },
        "/v1/webhooks": {
            "post": {
                "summary": "register a webhook (url, optional secret); deliveries are signed with "
                "Abyssal-Signature: t=<unix>,v1=hex(HMAC-SHA256(secret, t + '.' + body))"
            },
            "get": {"summary": "the tenant's webhooks"},
        },
        "/v1/webhooks/deliveries": {"get": {"summary": "delivery records (?status=pending|delivered|dead)"}},
        "/v1/webhooks/dead-letters": {"get": {"summary": "deliveries that exhausted their retries"}},
    },
}
