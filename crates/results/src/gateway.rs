//! The result store's HTTP gateway.
//!
//! - `PUT /v1/results/{task}`: a worker uploads its result for `task`; header
//!   `x-xiebao-signature` is the worker's `eth_sign` over [`upload_hash`]`(task, cid)`. The
//!   gateway recovers the worker from it and asks the [`Authorize`] hook whether that worker
//!   may upload for the task (the node: it contributed to it, or header
//!   `x-xiebao-authorization` holds the pool owner's contribution authorization for it, so a
//!   trust-1 worker uploads before its single `contributeAndFinalize`). Answers
//!   `201 {"cid", "task", "worker"}`.
//! - `GET /v1/results/{cid}`: the bytes, re-hashed against their address before they are sent.
//!
//! Errors are JSON `{"error": "..."}` with 400 (bad address or signature encoding),
//! 401 (signature does not recover), 403 (worker not authorized), 404 (unknown result),
//! 413 (too large), 500 (damaged or store failure), 502 (the authorization check failed).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use alloy_primitives::{Address, B256, Keccak256};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;

use crate::{ResultStore, ResultsError, cid_of};

/// Largest result accepted, bytes.
pub const RESULT_SIZE_MAX_BYTES: usize = 64 << 20;
/// Header carrying the uploader's signature.
pub const SIGNATURE_HEADER: &str = "x-xiebao-signature";
/// Header carrying the pool owner's contribution authorization for the uploader (optional).
pub const AUTHORIZATION_HEADER: &str = "x-xiebao-authorization";
/// Signing domain of uploads; renaming it is a breaking change.
const UPLOAD_DOMAIN: &[u8] = b"_XIEBAO_RESULTS_UPLOAD";

/// Whether a worker may upload a task's result, given the authorization it presented if any
/// (`Err`: the check itself failed).
pub type Authorize = Arc<
    dyn Fn(
            B256,
            Address,
            Option<alloy_primitives::Bytes>,
        ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send>>
        + Send
        + Sync,
>;

/// What a worker signs (as an `eth_sign` message) to upload `cid` as `task`'s result:
/// `keccak256("_XIEBAO_RESULTS_UPLOAD" ‖ task ‖ cid)`.
pub fn upload_hash(task: &B256, cid: &str) -> B256 {
    let mut hasher = Keccak256::new();
    hasher.update(UPLOAD_DOMAIN);
    hasher.update(task);
    hasher.update(cid.as_bytes());
    hasher.finalize()
}

#[derive(Clone)]
struct Gateway {
    store: Arc<ResultStore>,
    authorize: Authorize,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message.into() }))).into_response()
}

async fn upload(
    State(gateway): State<Gateway>,
    Path(task): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(task) = task.parse::<B256>() else {
        return error(StatusCode::BAD_REQUEST, format!("`{task}` is not a task id (32 bytes hex)"));
    };
    let Some(signature) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        return error(StatusCode::UNAUTHORIZED, format!("missing header {SIGNATURE_HEADER}"));
    };
    let Ok(signature) = alloy_primitives::hex::decode(signature.trim()) else {
        return error(StatusCode::BAD_REQUEST, format!("{SIGNATURE_HEADER} is not hex"));
    };
    let authorization = match headers.get(AUTHORIZATION_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(text)) => match alloy_primitives::hex::decode(text.trim()) {
            Ok(bytes) => Some(alloy_primitives::Bytes::from(bytes)),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("{AUTHORIZATION_HEADER} is not hex"),
                );
            }
        },
        Some(Err(_)) => {
            return error(StatusCode::BAD_REQUEST, format!("{AUTHORIZATION_HEADER} is not hex"));
        }
    };
    let cid = cid_of(&body);
    let worker =
        match xiebao_types::crypto::recover_eth_signed(&upload_hash(&task, &cid), &signature) {
            Ok(worker) => worker,
            Err(e) => {
                return error(StatusCode::UNAUTHORIZED, format!("signature does not recover: {e}"));
            }
        };
    match (gateway.authorize)(task, worker, authorization).await {
        Ok(true) => {}
        Ok(false) => {
            return error(
                StatusCode::FORBIDDEN,
                format!("worker {worker} may not upload results for task {task}"),
            );
        }
        Err(e) => {
            return error(StatusCode::BAD_GATEWAY, format!("cannot check the upload right: {e}"));
        }
    }
    let store = gateway.store.clone();
    match tokio::task::spawn_blocking(move || store.put(&body)).await {
        Ok(Ok(stored)) => (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "cid": stored, "task": task, "worker": worker })),
        )
            .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn download(State(gateway): State<Gateway>, Path(cid): Path<String>) -> Response {
    let store = gateway.store.clone();
    let read = tokio::task::spawn_blocking(move || store.get(&cid)).await;
    match read {
        Ok(Ok(bytes)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Ok(Err(e @ ResultsError::BadCid { .. })) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Ok(Err(e @ ResultsError::NotFound { .. })) => error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The gateway's routes over `store`, uploads checked by `authorize`.
pub fn router(store: Arc<ResultStore>, authorize: Authorize) -> Router {
    Router::new()
        .route("/v1/results/{id}", put(upload).get(download))
        .layer(DefaultBodyLimit::max(RESULT_SIZE_MAX_BYTES))
        .with_state(Gateway { store, authorize })
}

/// Serves the gateway on `listener` until the task is dropped.
///
/// # Errors
/// If accepting connections fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<ResultStore>,
    authorize: Authorize,
) -> std::io::Result<()> {
    axum::serve(listener, router(store, authorize)).await
}
