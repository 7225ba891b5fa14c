//! The model list of OpenAI's API: `GET /v1/models` (every model group and alias) and
//! `GET /v1/models/{id}` (one of them, or a 404 that OpenAI's SDKs raise as `NotFoundError`).
//! A group is a "model" to clients; `owned_by` says who serves it.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Shared;
use super::chat::{json_response, unix_now};
use super::error::{Api, ApiError, Kind};

/// What `owned_by` says of every model.
const OWNER: &str = "llmux";

/// A `model` object (members in alphabetical order, as the `serde_json` maps it was once
/// written from printed them).
#[derive(Serialize)]
struct Model<'a> {
    created: u64,
    id: &'a str,
    object: &'static str,
    owned_by: &'static str,
}

/// The model list.
#[derive(Serialize)]
struct List<'a> {
    data: Vec<Model<'a>>,
    object: &'static str,
}

fn model(id: &str, created: u64) -> Model<'_> {
    Model {
        created,
        id,
        object: "model",
        owned_by: OWNER,
    }
}

/// `GET /v1/models`: every model group and alias.
pub async fn list(State(state): State<Shared>) -> Response {
    let config = state.router.config();
    let created = unix_now();
    let mut data: Vec<Model> = config.groups.iter().map(|g| model(g, created)).collect();
    data.extend(
        config
            .router
            .model_group_alias
            .keys()
            .filter(|a| !config.groups.contains(a))
            .map(|a| model(a, created)),
    );
    json_response(&List {
        data,
        object: "list",
    })
}

/// `GET /v1/models/{id}`: a model group or alias (ids may hold slashes).
pub async fn retrieve(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let config = state.router.config();
    let known = config.resolve_group(&id).is_some();
    if known {
        return json_response(&model(&id, unix_now()));
    }
    ApiError::new(
        Kind::NotFound,
        format!("no model group or alias named '{id}'; GET /v1/models lists them"),
    )
    .into_response_for(Api::OpenAi)
    .into_response()
}
