//! REST/JSON transport of the northbound API (axum), with its OpenAPI document at
//! `/openapi.json`. Errors are always `{"error": {"code": ..., "message": ...}}` with a 4xx/5xx.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{Api, ApiError, CreateNetwork};
use crate::model::NetworkKey;

/// The OpenAPI 3 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route, as OpenAPI writes its path; a test checks the document covers them all.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/networks"),
    ("post", "/v1/networks"),
    ("get", "/v1/networks/{namespace}/{name}"),
    ("patch", "/v1/networks/{namespace}/{name}"),
    ("delete", "/v1/networks/{namespace}/{name}"),
    ("get", "/v1/networks/{namespace}/{name}/attachments"),
    ("get", "/v1/attachments"),
    ("get", "/v1/nodes"),
    ("delete", "/v1/nodes/{name}"),
];

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            ApiError::Exhausted(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Exhausted"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
        };
        let body = json!({"error": {"code": code, "message": self.message()}});
        (status, axum::Json(body)).into_response()
    }
}

fn key(namespace: String, name: String) -> Result<NetworkKey, ApiError> {
    NetworkKey::parse(&format!("{namespace}/{name}"))
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

async fn list(
    State(api): State<Api>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(api.list(q.get("namespace").map(String::as_str))))
}

fn bad_body(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("invalid request body: {e}"))
}

/// Deserializes a request, refusing fields nothing reads, so a typo is an error, not a default
/// (the spec type is shared with the CRD, which must accept fields of newer versions).
fn strict<'de, T: serde::Deserialize<'de>>(
    de: impl serde::Deserializer<'de, Error = serde_json::Error>,
) -> Result<T, ApiError> {
    let mut unknown = Vec::new();
    let v = serde_ignored::deserialize(de, |path| unknown.push(path.to_string()))
        .map_err(|e| bad_body(&e))?;
    match unknown.is_empty() {
        true => Ok(v),
        false => Err(bad_body(&format_args!(
            "unknown field {}",
            unknown.join(", ")
        ))),
    }
}

async fn create(State(api): State<Api>, body: Bytes) -> Result<impl IntoResponse, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(&body);
    let req: CreateNetwork = strict(&mut de)?;
    de.end().map_err(|e| bad_body(&e))?;
    let created = api.create(req)?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

async fn get_one(
    State(api): State<Api>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(api.get(&key(namespace, name)?)?))
}

/// `PATCH`: a JSON merge patch (RFC 7396) of the network's spec.
async fn patch(
    State(api): State<Api>,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let key = key(namespace, name)?;
    let patch: Value = serde_json::from_slice(&body).map_err(|e| bad_body(&e))?;
    if !patch.is_object() {
        return Err(bad_body(&"a merge patch of the spec is a JSON object"));
    }
    let view = api.update(&key, |current| {
        let mut doc = serde_json::to_value(current).map_err(|e| bad_body(&e))?;
        merge_patch(&mut doc, &patch);
        strict(doc)
    })?;
    Ok(axum::Json(view))
}

/// RFC 7396: objects merge member by member, `null` removes a member, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in members {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn force(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("force").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "force must be true or false, not {other:?}"
        ))),
    }
}

async fn delete(
    State(api): State<Api>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let removed = api.delete(&key(namespace, name)?, force(&q)?)?;
    Ok(axum::Json(json!({"attachmentsRemoved": removed})))
}

async fn list_nodes(State(api): State<Api>) -> impl IntoResponse {
    axum::Json(api.nodes())
}

async fn delete_node(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let removed = api.delete_node(&name, force(&q)?)?;
    Ok(axum::Json(json!({"attachmentsRemoved": removed})))
}

async fn network_attachments(
    State(api): State<Api>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(api.attachments(Some(&key(namespace, name)?))?))
}

async fn all_attachments(State(api): State<Api>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(api.attachments(None)?))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see /openapi.json".into())
}

pub fn router(api: Api) -> Router {
    Router::new()
        .route("/v1/networks", get(list).post(create))
        .route(
            "/v1/networks/{namespace}/{name}",
            get(get_one).patch(patch).delete(delete),
        )
        .route(
            "/v1/networks/{namespace}/{name}/attachments",
            get(network_attachments),
        )
        .route("/v1/attachments", get(all_attachments))
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/nodes/{name}", axum::routing::delete(delete_node))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .with_state(api)
}
