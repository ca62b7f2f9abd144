//! `GET /v1/openapi.json`: the `OpenAPI` 3.1 document of this server's API, with every processor's
//! inputs schema as a component (`Inputs.<ns>.<name>.<version>`). Built from the registry the
//! server runs with, so it never names a processor the server does not know. The tests check it
//! with an independent validator, and every answer of every route against it.

use std::sync::Arc;

use axum::extract::State as Shared;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::state::State;

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn answer(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": reference(schema)}}})
}

/// The error answers of a route: every status it may give, each an error document.
fn errors(statuses: &[u16]) -> Map<String, Value> {
    statuses
        .iter()
        .map(|status| {
            let description = match status {
                400 => "The request is malformed.",
                401 => "No API token, or an unknown or revoked one.",
                403 => "The token lacks the scope, or may not charge that plan.",
                404 => "There is no such thing the caller may see.",
                409 => "A conflict: an idempotency key used for another request, a key taken.",
                413 => "The body is over the limit.",
                416 => "The range is outside the artifact.",
                422 => "The inputs do not match the processor's schema.",
                429 => "Over a limit: the plan's budget, a lease.",
                _ => "The ledger or the store does not answer.",
            };
            (status.to_string(), answer(description, "Error"))
        })
        .collect()
}

fn with(mut responses: Map<String, Value>, status: &str, response: Value) -> Value {
    responses.insert(status.to_owned(), response);
    Value::Object(responses)
}

fn id_parameter() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}})
}

fn prefer_parameter() -> Value {
    json!({"name": "Prefer", "in": "header", "required": false,
           "description": "`wait` or `wait=N`: answer when the run ends, or after N seconds (at most 60).",
           "schema": {"type": "string"}})
}

/// The answers of `PUT /v1/runs/{id}`.
fn put_responses() -> Value {
    let mut responses = errors(&[400, 401, 403, 404, 409, 413, 422, 429, 503]);
    responses.insert("201".into(), answer("The run, queued (or ended, with Prefer: wait).", "Run"));
    responses
        .insert("200".into(), answer("The run this id made before, for the same request.", "Run"));
    Value::Object(responses)
}

/// The answers of `GET /v1/artifacts/{path}`.
fn artifact_responses() -> Value {
    let bytes = json!({"*/*": {"schema": {"type": "string", "format": "binary"}}});
    let mut responses = errors(&[400, 401, 403, 404, 416, 503]);
    responses.insert("200".into(), json!({"description": "The bytes.", "content": bytes}));
    responses.insert(
        "206".into(),
        json!({"description": "The bytes of the range (Content-Range says which).", "content": bytes}),
    );
    responses
        .insert("304".into(), json!({"description": "If-None-Match named its ETag (its CID)."}));
    Value::Object(responses)
}

/// The answers of `GET /v1/runs/{id}/events`.
fn event_responses() -> Value {
    let mut responses = errors(&[400, 401, 403, 404, 503]);
    responses.insert(
        "200".into(),
        json!({"description": "The event stream.",
               "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
    );
    responses.insert(
        "101".into(),
        json!({"description": "Upgraded to a WebSocket: `{seq, frame}` messages, then `{end}`."}),
    );
    Value::Object(responses)
}

/// The component name of a processor's inputs schema.
fn inputs_name(reference: &str) -> String {
    format!("Inputs.{}", reference.replace(['/', '@'], "."))
}

/// What `/v1/runs/{id}/verify` and `/v1/ledger/verify` answer.
fn verification_schemas() -> Map<String, Value> {
    serde_json::from_value(json!({
        "RunVerification": {
            "type": "object", "required": ["ok", "execution_id", "outputs_checked", "bytes_checked", "problems"],
            "properties": {"ok": {"type": "boolean"}, "execution_id": {"type": "string"},
                           "outputs_checked": {"type": "integer"}, "bytes_checked": {"type": "integer"},
                           "attestation": {"enum": ["verified", "unsigned", "failed", "unchecked"],
                                           "description": "the run's signed attestation, checked against the server's trusted keys"},
                           "key_id": {"type": ["string", "null"]},
                           "problems": {"type": "array", "items": {"type": "string"}}}
        },
        "Attestation": {
            "type": "object", "required": ["payload", "payloadType", "signatures"],
            "properties": {"payload": {"type": "string", "contentEncoding": "base64"},
                           "payloadType": {"const": "application/vnd.in-toto+json"},
                           "signatures": {"type": "array", "items": {"type": "object", "required": ["keyid", "sig"],
                               "properties": {"keyid": {"type": "string"}, "sig": {"type": "string"}}}}}
        },
        "RunLedger": {
            "type": "object", "required": ["entries"],
            "properties": {"entries": {"type": "array", "items": {
                "type": "object", "required": ["seq", "kind", "at_ms", "body", "hash"],
                "properties": {"seq": {"type": "integer"}, "kind": {"type": "string"}, "at_ms": {"type": "integer"},
                               "body": {}, "hash": {"type": "string"}}}}}
        },
        "LedgerVerification": {
            "type": "object", "required": ["ok", "entries", "first_broken", "file_problem"],
            "properties": {"ok": {"type": "boolean"}, "entries": {"type": "integer"},
                           "first_broken": {"type": ["object", "null"], "properties": {"seq": {"type": "integer"}, "problem": {"type": "string"}}},
                           "file_problem": {"type": ["string", "null"]}}
        }
    }))
    .expect("an object")
}

/// A run as the API describes it.
fn run_schema(timestamp: &Value) -> Value {
    json!({
        "type": "object",
        "required": ["id", "status", "ref", "mode", "adapter", "created_at", "started_at", "completed_at", "envelope", "urls"],
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["queued", "starting", "running", "succeeded", "failed", "cancelled"]},
            "ref": {"type": ["string", "null"]},
            "mode": {"type": "string"},
            "adapter": {"type": "string"},
            "created_at": timestamp, "started_at": timestamp, "completed_at": timestamp,
            "plan": {"type": ["string", "null"], "description": "The plan the run is charged to."},
            "runtime": {"type": ["string", "null"], "description": "process, docker or modal, once started."},
            "attempts": {"type": ["integer", "null"]},
            "duration_ms": {"type": ["integer", "null"]},
            "cost_usd_micro": {"type": ["integer", "null"], "description": "What the run cost, once it ended."},
            "cached": {"type": ["boolean", "null"], "description": "Whether the outputs came from the memo cache."},
            "envelope": {"type": ["object", "null"], "description": "The canonical envelope, once the run ended."},
            "urls": {"type": "object", "required": ["get", "cancel", "events", "receipt"],
                     "properties": {"get": {"type": "string"}, "cancel": {"type": "string"},
                                    "events": {"type": "string"}, "receipt": {"type": "string"}}}
        }
    })
}

fn schemas(state: &State) -> Map<String, Value> {
    let timestamp = json!({"type": ["string", "null"], "format": "date-time"});
    let mut schemas: Map<String, Value> = serde_json::from_value(json!({
        "Error": {
            "type": "object", "required": ["status", "error"],
            "properties": {
                "status": {"const": "error"},
                "error": {"type": "object", "required": ["code", "message"],
                          "properties": {"code": {"type": "string", "pattern": "^ERR_[A-Z_]+$"},
                                         "message": {"type": "string"}}},
                "hint": {"type": ["string", "null"]}
            }
        },
        "RunRequest": {
            "type": "object", "required": ["ref"], "additionalProperties": false,
            "properties": {
                "ref": {"type": "string", "description": "ns/name@version"},
                "mode": {"enum": ["mock", "real"], "default": "mock"},
                "adapter": {"enum": ["local", "modal"], "default": "local"},
                "env": {"enum": ["dev", "staging", "main"], "description": "The Modal environment of adapter modal."},
                "inputs": {"type": "object"},
                "write_prefix": {"type": "string"},
                "plan": {"type": "string"},
                "transfer": {"enum": ["auto", "direct", "stream"]},
                "no_cache": {"type": "boolean"},
                "reuse_real": {"type": "boolean"},
                "adapter_opts": {"type": "object"},
                "webhook": {"type": "string", "format": "uri"},
                "webhook_events_filter": {"type": "array", "items": {"enum": ["start", "output", "logs", "completed"]}}
            }
        },
        "RunList": {
            "type": "object", "required": ["runs", "next_cursor"],
            "properties": {"runs": {"type": "array", "items": reference("Run")},
                           "next_cursor": {"type": ["string", "null"]}}
        },
        "Receipt": {"type": "object", "required": ["execution_id"], "description": "The run's determinism.json."},
        "ArtifactReference": {
            "type": "object", "required": ["$artifact", "cid", "mime"], "additionalProperties": false,
            "properties": {"$artifact": {"type": "string"}, "cid": {"type": "string", "pattern": "^b3:[0-9a-f]{64}$"},
                           "mime": {"type": "string"}}
        },
        "Processor": {
            "type": "object", "required": ["ref", "pins", "timeout_s"],
            "properties": {"ref": {"type": "string"}, "name": {"type": ["string", "null"]},
                           "description": {"type": ["string", "null"]}, "pins": {"type": "object"},
                           "timeout_s": {"type": "integer"}}
        },
        "ProcessorList": {"type": "object", "required": ["processors"],
                          "properties": {"processors": {"type": "array", "items": reference("Processor")}}},
        "ProcessorDocument": {
            "allOf": [reference("Processor")],
            "required": ["inputs", "outputs", "runtime"],
            "properties": {"inputs": {"type": "object"}, "outputs": {"type": "array"}, "runtime": {"type": "object"}}
        },
        "NewPlan": {"type": "object", "required": ["key", "budget_usd_micro"], "additionalProperties": false,
                    "properties": {"key": {"type": "string"}, "budget_usd_micro": {"type": "integer", "minimum": 0}}},
        "Plan": {
            "type": "object",
            "required": ["key", "budget_usd_micro", "reserved_usd_micro", "spent_usd_micro", "available_usd_micro", "created_at_ms"],
            "properties": {"key": {"type": "string"}, "budget_usd_micro": {"type": "integer"},
                           "reserved_usd_micro": {"type": "integer"}, "spent_usd_micro": {"type": "integer"},
                           "available_usd_micro": {"type": "integer"}, "created_at_ms": {"type": "integer"}}
        },
        "PlanList": {"type": "object", "required": ["plans"],
                     "properties": {"plans": {"type": "array", "items": reference("Plan")}}},
        "DeliveryList": {"type": "object", "required": ["deliveries"], "properties": {"deliveries": {"type": "array", "items": {
            "type": "object", "required": ["run_id", "message_id", "event", "attempt", "status_code", "error", "at_ms"],
            "properties": {"run_id": {"type": "string"}, "message_id": {"type": "string"},
                           "event": {"enum": ["start", "output", "logs", "completed"]}, "attempt": {"type": "integer"},
                           "status_code": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]},
                           "at_ms": {"type": "integer"}}}}}},
        "Health": {"type": "object", "required": ["ok"], "properties": {"ok": {"const": true}, "queue_depth": {"type": "integer"}}}
    }))
    .unwrap_or_default();
    for entry in state.orchestrator.registry.processors() {
        schemas.insert(inputs_name(entry.spec.reference.as_str()), entry.spec.inputs.clone());
    }
    schemas.insert("Run".into(), run_schema(&timestamp));
    schemas.extend(verification_schemas());
    schemas
}

/// The document.
/// The paths of `integrity.rs`: a run's and the ledger's checks.
fn integrity_paths() -> Map<String, Value> {
    serde_json::from_value(json!({
            "/v1/runs/{id}/verify": {"get": {"summary": "theory verify for one run: its outputs re-hashed in the store, its index and receipts checked.", "parameters": [id_parameter()],
                "responses": with(errors(&[401, 403, 404, 503]), "200", answer("What was checked and what did not hold.", "RunVerification"))}},
            "/v1/runs/{id}/attestation": {"get": {"summary": "The run's signed attestation: a DSSE envelope of an in-toto statement of its outputs and receipt (404 for an unsigned run).", "parameters": [id_parameter()],
                "responses": with(errors(&[401, 403, 404, 503]), "200", answer("attestation.json.", "Attestation"))}},
            "/v1/runs/{id}/ledger": {"get": {"summary": "The run's entries in the ledger, in order: started, failed attempts (why it was tried again), the plan's charge, finished.", "parameters": [id_parameter()],
                "responses": with(errors(&[401, 403, 404, 503]), "200", answer("The entries.", "RunLedger"))}},
            "/v1/ledger/verify": {"get": {"summary": "The ledger's event chain and database file checked; the first entry that does not hold.",
                "responses": with(errors(&[401, 403, 503]), "200", answer("The chain's verdict.", "LedgerVerification"))}}
    }))
    .expect("an object")
}

pub(crate) fn document(state: &State) -> Value {
    let run = json!({"201": answer("The run, queued (or ended, with Prefer: wait).", "Run"),
                     "200": answer("The run an earlier request with this Idempotency-Key made.", "Run")});
    let mut create = errors(&[400, 401, 403, 404, 409, 413, 422, 429, 503]);
    create.extend(run.as_object().cloned().unwrap_or_default());
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Theory",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run pinned processors and get content-addressed outputs and a receipt. Authenticate with `Authorization: Bearer TOKEN` (`theory token create`) unless the server runs with --no-auth.",
        },
        "components": {
            "schemas": schemas(state),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"summary": "Alive.", "security": [], "responses": {"200": answer("Alive.", "Health")}}},
            "/readyz": {"get": {"summary": "The ledger answers.", "security": [],
                                "responses": with(errors(&[503]), "200", answer("Ready.", "Health"))}},
            "/metrics": {"get": {"summary": "Prometheus metrics (a plans:admin token).",
                "responses": with(errors(&[401, 403, 503]), "200", json!({"description": "Prometheus' text format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}))}},
            "/v1/openapi.json": {"get": {"summary": "This document.", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/v1/runs": {
                "post": {
                    "summary": "Submit a run.",
                    "parameters": [prefer_parameter(),
                        {"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 255}}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": reference("RunRequest")}}},
                    "responses": Value::Object(create),
                },
                "get": {
                    "summary": "List runs, newest first.",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"enum": ["queued", "starting", "running", "succeeded", "failed", "cancelled"]}},
                        {"name": "ref", "in": "query", "schema": {"type": "string"}},
                        {"name": "plan", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}}
                    ],
                    "responses": with(errors(&[400, 401, 403, 503]), "200", answer("A page of runs.", "RunList")),
                },
            },
            "/v1/runs/{id}": {
                "get": {"summary": "One run.", "parameters": [id_parameter(), prefer_parameter()],
                        "responses": with(errors(&[401, 403, 404, 503]), "200", answer("The run.", "Run"))},
                "put": {"summary": "Submit a run under an id the client chose (idempotent: the same request again answers that run).",
                        "parameters": [id_parameter(), prefer_parameter()],
                        "requestBody": {"required": true, "content": {"application/json": {"schema": reference("RunRequest")}}},
                        "responses": put_responses()},
            },
            "/v1/runs/{id}/cancel": {"post": {"summary": "Cancel a run (ERR_CANCELLED).", "parameters": [id_parameter()],
                "responses": with(errors(&[401, 403, 404, 503]), "200", answer("The run.", "Run"))}},
            "/v1/runs/{id}/webhooks": {"get": {"summary": "Every attempt to deliver the run's webhooks.", "parameters": [id_parameter()],
                "responses": with(errors(&[401, 403, 404, 503]), "200", answer("The attempts.", "DeliveryList"))}},
            "/v1/runs/{id}/receipt": {"get": {"summary": "The run's receipt.", "parameters": [id_parameter()],
                "responses": with(errors(&[401, 403, 404, 503]), "200", answer("determinism.json.", "Receipt"))}},
            "/v1/runs/{id}/events": {"get": {
                "summary": "The run's frames as Server-Sent Events (or over a WebSocket on upgrade), then `end` with the run.",
                "parameters": [id_parameter(),
                    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                "responses": event_responses()}},
            "/v1/uploads": {"post": {
                "summary": "Store a file as an input; the answer goes in a run's inputs.",
                "parameters": [{"name": "name", "in": "query", "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}},
                "responses": with(errors(&[400, 401, 403, 413, 503]), "201", answer("The reference.", "ArtifactReference"))}},
            "/v1/artifacts/{path}": {"get": {
                "summary": "An artifact, streamed; ETag is its CID; Range requests.",
                "parameters": [{"name": "path", "in": "path", "required": true, "schema": {"type": "string"},
                                "description": "The world path without its leading slash."},
                               {"name": "run", "in": "query", "schema": {"type": "string"}},
                               {"name": "Range", "in": "header", "schema": {"type": "string"}}],
                "responses": artifact_responses()}},
            "/v1/processors": {"get": {"summary": "The processors.",
                "responses": with(errors(&[401]), "200", answer("Every processor.", "ProcessorList"))}},
            "/v1/processors/{ref}": {"get": {"summary": "One processor: spec, pins, inputs schema.",
                "parameters": [{"name": "ref", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with(errors(&[400, 401, 404]), "200", answer("The processor.", "ProcessorDocument"))}},
            "/v1/plans": {
                "get": {"summary": "The plans the caller sees.",
                        "responses": with(errors(&[401, 503]), "200", answer("The plans.", "PlanList"))},
                "post": {"summary": "Make a plan (plans:admin).",
                         "requestBody": {"required": true, "content": {"application/json": {"schema": reference("NewPlan")}}},
                         "responses": with(errors(&[400, 401, 403, 409, 503]), "201", answer("The plan.", "Plan"))},
            },
            "/v1/plans/{key}": {"get": {"summary": "One plan.",
                "parameters": [{"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with(errors(&[401, 404, 503]), "200", answer("The plan.", "Plan"))}},
        },
    });
    if let Some(paths) = document["paths"].as_object_mut() {
        paths.extend(integrity_paths());
    }
    document
}

/// `GET /v1/openapi.json`.
pub(crate) async fn openapi(Shared(state): Shared<Arc<State>>) -> Response {
    axum::Json(document(&state)).into_response()
}
