//! The result store's HTTP gateway.
//!
//! - `PUT /v1/results/{task}`: a worker uploads its result for `task`. Header
//!   [`CID_HEADER`] announces the result's address and [`SIGNATURE_HEADER`] is the worker's
//!   `eth_sign` over [`upload_hash`]`(task, cid)`. The gateway recovers the worker from the
//!   headers and asks the [`Authorize`] hook whether that worker may upload for the task (the
//!   node: it contributed to it, or header `x-xiebao-authorization` holds the pool owner's
//!   contribution authorization for it, so a trust-1 worker uploads before its single
//!   `contributeAndFinalize`) — all before it reads a byte of the body. The body is then
//!   streamed to a temporary file while hashed, bounded by the size limit and the worker's
//!   quota for the task, and stored only if it hashes to the announced address. Answers
//!   `201 {"cid", "task", "worker"}`.
//! - `GET /v1/results/{cid}`: the bytes, re-hashed against their address (in chunks) before
//!   they are streamed.
//!
//! Errors are JSON `{"error": "..."}` with 400 (bad address, signature encoding, or bytes
//! that are not the announced ones), 401 (signature missing or not recovering), 403 (worker
//! not authorized), 404 (unknown result), 408 (the body took too long), 413 (too large),
//! 429 (the worker's quota for the task is spent, or it is uploading for it already),
//! 500 (damaged or store failure), 502 (the authorization check failed), 503 (too many
//! uploads at once; also the raw answer to a connection over the per-address or total cap,
//! which is then closed).
//!
//! **Invariant:** memory does not grow with what clients send: no body is buffered beyond
//! one flush buffer per upload in flight, uploads in flight are capped, connections are
//! capped per client address and in all, and a connection that moves no byte for
//! [`Limits::connection_idle_max`] is closed.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use alloy_primitives::{Address, B256, Keccak256};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use futures::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Incoming, ResultStore, ResultsError};

/// Largest result accepted by default, bytes.
pub const RESULT_SIZE_MAX_BYTES: usize = 64 << 20;
/// Header carrying the uploader's signature.
pub const SIGNATURE_HEADER: &str = "x-xiebao-signature";
/// Header carrying the pool owner's contribution authorization for the uploader (optional).
pub const AUTHORIZATION_HEADER: &str = "x-xiebao-authorization";
/// Header announcing the uploaded result's address (CIDv1), which the signature covers.
pub const CID_HEADER: &str = "x-xiebao-cid";
/// Signing domain of uploads; renaming it is a breaking change.
const UPLOAD_DOMAIN: &[u8] = b"_XIEBAO_RESULTS_UPLOAD";
/// Received bytes are written to disk in pieces of about this size.
const FLUSH_BYTES: usize = 256 * 1024;
/// Downloads are streamed in pieces of this size.
const SEND_CHUNK_BYTES: usize = 64 * 1024;

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

/// The bounds the gateway serves under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest result accepted, bytes.
    pub result_size_max_bytes: u64,
    /// Uploads received at once; one more is answered 503.
    pub uploads_in_flight_max: usize,
    /// Open connections from one client address; one more is answered 503 and closed.
    pub connections_per_ip_max: usize,
    /// Open connections in all; one more is answered 503 and closed.
    pub connections_max: usize,
    /// A connection that moves no byte either way for this long is closed (slow request
    /// heads, idle keep-alive, a client that stops sending its body or reading its answer).
    pub connection_idle_max: Duration,
    /// The longest an upload's body may take to arrive; then it is answered 408.
    pub upload_duration_max: Duration,
    /// Results one worker may store for one task.
    pub uploads_per_task_worker_max: u32,
    /// Bytes one worker may store for one task.
    pub bytes_per_task_worker_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            result_size_max_bytes: RESULT_SIZE_MAX_BYTES as u64,
            // A devnet's workers, scheduler and requester all come from one address, and a
            // connection now costs at most its read buffer: the caps bound memory, not
            // honest load.
            uploads_in_flight_max: 64,
            connections_per_ip_max: 256,
            connections_max: 1024,
            connection_idle_max: Duration::from_secs(30),
            upload_duration_max: Duration::from_secs(300),
            uploads_per_task_worker_max: 4,
            bytes_per_task_worker_max: 2 * RESULT_SIZE_MAX_BYTES as u64,
        }
    }
}

/// What one worker stored for one task, and whether it is uploading for it now.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    uploads: u32,
    bytes: u64,
    receiving: bool,
}

#[derive(Clone)]
struct Gateway {
    store: Arc<ResultStore>,
    authorize: Authorize,
    limits: Arc<Limits>,
    uploads: Arc<Semaphore>,
    /// Per (task, worker): bounded by the pairs the authorization hook accepted, that is by
    /// the contributions on chain.
    usage: Arc<Mutex<HashMap<(B256, Address), Usage>>>,
}

/// Why the gateway refused a request: the status, and the reason sent as `{"error": …}`.
#[derive(Debug)]
struct Refused {
    status: StatusCode,
    reason: String,
    /// Sent as `Retry-After` (seconds) when the refusal is only for now.
    retry_after_s: Option<u32>,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.reason }));
        match self.retry_after_s {
            Some(seconds) => {
                (self.status, [(header::RETRY_AFTER, seconds.to_string())], body).into_response()
            }
            None => (self.status, body).into_response(),
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Refused {
    Refused { status, reason: message.into(), retry_after_s: None }
}

/// Marks (task, worker) as receiving, and clears the mark when dropped.
struct Receiving {
    usage: Arc<Mutex<HashMap<(B256, Address), Usage>>>,
    key: (B256, Address),
}

impl Drop for Receiving {
    fn drop(&mut self) {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = usage.get_mut(&self.key) {
            entry.receiving = false;
        }
    }
}

fn header_hex(headers: &HeaderMap, name: &str) -> Result<Option<alloy_primitives::Bytes>, Refused> {
    match headers.get(name).map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(text)) => alloy_primitives::hex::decode(text.trim())
            .map(|bytes| Some(bytes.into()))
            .map_err(|_| error(StatusCode::BAD_REQUEST, format!("{name} is not hex"))),
        Some(Err(_)) => Err(error(StatusCode::BAD_REQUEST, format!("{name} is not hex"))),
    }
}

/// Everything that can be checked from the request head, in order of cost: the task, the
/// announced address, the declared length, the signature, the upload right.
async fn check_head(
    gateway: &Gateway,
    task: &str,
    headers: &HeaderMap,
) -> Result<(B256, String, Address, Option<u64>), Refused> {
    let Ok(task) = task.parse::<B256>() else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("`{task}` is not a task id (32 bytes hex)"),
        ));
    };
    let Some(signature) = header_hex(headers, SIGNATURE_HEADER)? else {
        return Err(error(StatusCode::UNAUTHORIZED, format!("missing header {SIGNATURE_HEADER}")));
    };
    let authorization = header_hex(headers, AUTHORIZATION_HEADER)?;
    let Some(cid) = headers.get(CID_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "missing header {CID_HEADER}: the result's address, which the signature covers"
            ),
        ));
    };
    let cid = cid.trim().to_owned();
    if let Err(e) = crate::check_cid(&cid) {
        return Err(error(StatusCode::BAD_REQUEST, e.to_string()));
    }
    let declared = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => match value.to_str().ok().and_then(|v| v.parse::<u64>().ok()) {
            Some(length) => Some(length),
            None => return Err(error(StatusCode::BAD_REQUEST, "Content-Length is not a number")),
        },
    };
    if let Some(length) = declared
        && length > gateway.limits.result_size_max_bytes
    {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the result is {length} bytes, over the store's limit of {} bytes",
                gateway.limits.result_size_max_bytes
            ),
        ));
    }
    let worker = xiebao_types::crypto::recover_eth_signed(&upload_hash(&task, &cid), &signature)
        .map_err(|e| error(StatusCode::UNAUTHORIZED, format!("signature does not recover: {e}")))?;
    match (gateway.authorize)(task, worker, authorization).await {
        Ok(true) => Ok((task, cid, worker, declared)),
        Ok(false) => Err(error(
            StatusCode::FORBIDDEN,
            format!("worker {worker} may not upload results for task {task}"),
        )),
        Err(e) => {
            Err(error(StatusCode::BAD_GATEWAY, format!("cannot check the upload right: {e}")))
        }
    }
}

/// Takes (task, worker)'s upload slot if its quota allows one more upload; returns the slot
/// and the bytes it may still store.
fn reserve(
    gateway: &Gateway,
    task: B256,
    worker: Address,
    declared: Option<u64>,
) -> Result<(Receiving, u64), Refused> {
    let limits = &gateway.limits;
    let mut usage = gateway.usage.lock().unwrap_or_else(PoisonError::into_inner);
    let entry = usage.entry((task, worker)).or_default();
    if entry.receiving {
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("worker {worker} is uploading a result for task {task} already"),
        ));
    }
    if entry.uploads >= limits.uploads_per_task_worker_max {
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "worker {worker} stored {} results for task {task}, the most one worker may store for one task",
                entry.uploads
            ),
        ));
    }
    let left = limits.bytes_per_task_worker_max.saturating_sub(entry.bytes);
    if let Some(length) = declared
        && length > left
    {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the result is {length} bytes, and worker {worker} may store {left} more bytes for task {task} (quota {} bytes)",
                limits.bytes_per_task_worker_max
            ),
        ));
    }
    entry.receiving = true;
    drop(usage);
    Ok((Receiving { usage: gateway.usage.clone(), key: (task, worker) }, left))
}

/// Writes `piece` to `incoming` off the async threads.
async fn write(mut incoming: Incoming, piece: Vec<u8>) -> Result<Incoming, Refused> {
    match tokio::task::spawn_blocking(move || incoming.write(&piece).map(|()| incoming)).await {
        Ok(Ok(incoming)) => Ok(incoming),
        Ok(Err(e @ ResultsError::TooLarge { .. })) => {
            Err(error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))
        }
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn upload(
    State(gateway): State<Gateway>,
    Path(task): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match receive(&gateway, &task, &headers, body).await {
        Ok(response) => response,
        Err(refused) => refused.into_response(),
    }
}

async fn receive(
    gateway: &Gateway,
    task: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let (task, cid, worker, declared) = check_head(gateway, task, headers).await?;
    let created = || {
        (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "cid": cid, "task": task, "worker": worker })),
        )
            .into_response()
    };
    // The announced bytes are here already (a retry, or another worker's identical
    // output): nothing to store, and nothing counted against the quota. The body is still
    // read (bounded, and thrown away as it comes): closing on an unread body resets the
    // connection, and the client could lose the answer.
    if gateway.store.contains(&cid) {
        let deadline = tokio::time::Instant::now() + gateway.limits.upload_duration_max;
        let mut stream = body.into_data_stream();
        let mut received: u64 = 0;
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
            received += chunk.len() as u64;
            if received > gateway.limits.result_size_max_bytes {
                break;
            }
        }
        return Ok(created());
    }
    let (_receiving, quota_left) = reserve(gateway, task, worker, declared)?;
    let Ok(_permit): Result<OwnedSemaphorePermit, _> = gateway.uploads.clone().try_acquire_owned()
    else {
        return Err(Refused {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: format!(
                "the result store is receiving {} uploads, its most at once: retry later",
                gateway.limits.uploads_in_flight_max
            ),
            retry_after_s: Some(5),
        });
    };
    let limit = gateway.limits.result_size_max_bytes.min(quota_left);
    let over = |received: u64| {
        let rule = if limit < gateway.limits.result_size_max_bytes {
            format!(
                "worker {worker} may store {quota_left} more bytes for task {task} (quota {} bytes)",
                gateway.limits.bytes_per_task_worker_max
            )
        } else {
            format!("the store's limit is {limit} bytes")
        };
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the result is over {limit} bytes ({received} received): {rule}"),
        )
    };
    let store = gateway.store.clone();
    let mut incoming = tokio::task::spawn_blocking(move || store.begin(limit))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let deadline = tokio::time::Instant::now() + gateway.limits.upload_duration_max;
    let mut stream = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::with_capacity(FLUSH_BYTES);
    let mut received: u64 = 0;
    loop {
        let Ok(next) = tokio::time::timeout_at(deadline, stream.next()).await else {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the upload took over {} s ({received} bytes received)",
                    gateway.limits.upload_duration_max.as_secs_f64()
                ),
            ));
        };
        match next {
            None => break,
            Some(Err(e)) => {
                return Err(error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")));
            }
            Some(Ok(chunk)) => {
                received += chunk.len() as u64;
                if received > limit {
                    return Err(over(received));
                }
                buffer.extend_from_slice(&chunk);
                if buffer.len() >= FLUSH_BYTES {
                    let piece = std::mem::replace(&mut buffer, Vec::with_capacity(FLUSH_BYTES));
                    incoming = write(incoming, piece).await?;
                }
            }
        }
    }
    if !buffer.is_empty() {
        incoming = write(incoming, buffer).await?;
    }
    let claimed = cid.clone();
    let committed = tokio::task::spawn_blocking(move || incoming.commit(&claimed))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match committed {
        Ok(_) => {
            let mut usage = gateway.usage.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = usage.entry((task, worker)).or_default();
            entry.uploads += 1;
            entry.bytes += received;
            Ok(created())
        }
        Err(e @ ResultsError::Mismatch { .. }) => {
            Err(error(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn download(State(gateway): State<Gateway>, Path(cid): Path<String>) -> Response {
    let store = gateway.store.clone();
    let opened = tokio::task::spawn_blocking(move || store.open_verified(&cid)).await;
    let (file, length) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e @ ResultsError::BadCid { .. })) => {
            return error(StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
        Ok(Err(e @ ResultsError::NotFound { .. })) => {
            return error(StatusCode::NOT_FOUND, e.to_string()).into_response();
        }
        Ok(Err(e)) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let file = tokio::fs::File::from_std(file);
    let chunks = futures::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt as _;
        let mut file = file?;
        let mut chunk = vec![0u8; SEND_CHUNK_BYTES];
        match file.read(&mut chunk).await {
            Ok(0) => None,
            Ok(read) => {
                chunk.truncate(read);
                Some((Ok(axum::body::Bytes::from(chunk)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// The gateway's routes over `store`, uploads checked by `authorize`, under the default
/// [`Limits`] (connection limits need [`serve_with`]).
pub fn router(store: Arc<ResultStore>, authorize: Authorize) -> Router {
    router_with(store, authorize, Limits::default())
}

/// The gateway's routes under `limits` (its upload limits: the connection limits are the
/// listener's, see [`serve_with`]).
pub fn router_with(store: Arc<ResultStore>, authorize: Authorize, limits: Limits) -> Router {
    let uploads = Arc::new(Semaphore::new(limits.uploads_in_flight_max));
    Router::new().route("/v1/results/{id}", put(upload).get(download)).with_state(Gateway {
        store,
        authorize,
        limits: Arc::new(limits),
        uploads,
        usage: Arc::default(),
    })
}

/// Serves the gateway on `listener` under the default [`Limits`] until the task is dropped.
///
/// # Errors
/// If accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    store: Arc<ResultStore>,
    authorize: Authorize,
) -> std::io::Result<()> {
    serve_with(listener, store, authorize, Limits::default()).await
}

/// Serves the gateway on `listener` under `limits` until the task is dropped.
///
/// # Errors
/// If accepting connections fails.
pub async fn serve_with(
    listener: TcpListener,
    store: Arc<ResultStore>,
    authorize: Authorize,
    limits: Limits,
) -> std::io::Result<()> {
    let listener = Guarded { listener, open: Arc::default(), limits: limits.clone() };
    axum::serve(listener, router_with(store, authorize, limits)).await
}

/// Open connections: per client address, and in all.
#[derive(Debug, Default)]
struct Open {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// A listener that admits a connection only within the per-address and total caps, and
/// hands it out wrapped in its idle timer.
struct Guarded {
    listener: TcpListener,
    open: Arc<Mutex<Open>>,
    limits: Limits,
}

impl Guarded {
    fn admit(&self, ip: IpAddr) -> Result<Slot, String> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.limits.connections_max {
            return Err(format!(
                "the result store has {} connections open, its most",
                self.limits.connections_max
            ));
        }
        let from_ip = open.per_ip.entry(ip).or_default();
        if *from_ip >= self.limits.connections_per_ip_max {
            return Err(format!(
                "{ip} has {} connections open to the result store, the most one address may",
                self.limits.connections_per_ip_max
            ));
        }
        *from_ip += 1;
        open.total += 1;
        Ok(Slot { open: self.open.clone(), ip })
    }
}

impl axum::serve::Listener for Guarded {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        loop {
            let (stream, address) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    // Out of descriptors, or a connection reset before it was accepted:
                    // transient; wait a little rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.admit(address.ip()) {
                Ok(slot) => {
                    return (
                        Connection::new(stream, slot, self.limits.connection_idle_max),
                        address,
                    );
                }
                Err(why) => {
                    let body = serde_json::json!({ "error": why }).to_string();
                    let answer = format!(
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    // Best effort and without waiting: a fresh socket's send buffer takes it.
                    let _ = stream.try_write(answer.as_bytes());
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// One admitted connection's place in the caps, given back when it closes.
#[derive(Debug)]
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        if let Some(from_ip) = open.per_ip.get_mut(&self.ip) {
            *from_ip -= 1;
            if *from_ip == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A TCP connection that fails with `TimedOut` once no byte moved either way for its idle
/// limit while the server waits on it.
struct Connection {
    stream: TcpStream,
    _slot: Slot,
    idle_max: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl Connection {
    fn new(stream: TcpStream, slot: Slot, idle_max: Duration) -> Self {
        Self { stream, _slot: slot, idle_max, idle: Box::pin(tokio::time::sleep(idle_max)) }
    }

    fn moved(&mut self) {
        let at = tokio::time::Instant::now() + self.idle_max;
        self.idle.as_mut().reset(at);
    }

    /// Called when the stream is not ready: ready with an error once the idle limit passed.
    fn poll_idle<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        match self.idle.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no byte moved for {} ms", self.idle_max.as_millis()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_idle(cx),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(written)) => {
                if written > 0 {
                    this.moved();
                }
                Poll::Ready(Ok(written))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_idle(cx),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_flush(cx) {
            Poll::Pending => this.poll_idle(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
