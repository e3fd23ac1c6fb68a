//! Serving a JSON-RPC module with limits on connections: at most so many in all and per
//! client address, and none idle for long.
//!
//! jsonrpsee's own server caps connections only in all, so one client could hold every slot
//! and lock everybody else out; an HTTP keep-alive connection could also stay open without
//! ever sending anything. Here each accepted connection needs a permit from both the global
//! and its address's budget (over its address's budget it waits for one of that address's
//! connections to end, so a client's burst is served late; past twice the budget, and past
//! the global one, connections are closed at once), and a connection with
//! no bytes read or written for [`ConnectionLimits::idle_timeout`] is closed (WebSocket pings
//! count as traffic, so a live subscriber stays).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use jsonrpsee::server::{
    ConnectionGuard, Methods, ServerConfig, ServerHandle, serve_with_graceful_shutdown,
    stop_channel,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

/// Which web origins may call a server from a browser (CORS on the HTTP endpoint).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers: browsers refuse cross-origin calls.
    #[default]
    Off,
    /// Any origin (`*`): fine for a public, read-mostly API that takes only signed writes.
    Any,
    /// These origins only (e.g. `https://explorer.example`).
    Origins(Vec<String>),
}

impl Cors {
    /// From a configuration list: empty → off, `*` anywhere → any, else those origins.
    pub fn from_list(origins: &[String]) -> Self {
        if origins.is_empty() {
            Self::Off
        } else if origins.iter().any(|o| o == "*") {
            Self::Any
        } else {
            Self::Origins(origins.to_vec())
        }
    }

    fn layer(&self) -> Option<tower_http::cors::CorsLayer> {
        use tower_http::cors::{AllowOrigin, Any, CorsLayer};
        let base = CorsLayer::new().allow_methods(Any).allow_headers(Any);
        match self {
            Self::Off => None,
            Self::Any => Some(base.allow_origin(Any)),
            Self::Origins(origins) => {
                let values = origins.iter().filter_map(|o| o.parse().ok()).collect::<Vec<_>>();
                Some(base.allow_origin(AllowOrigin::list(values)))
            }
        }
    }
}

/// How long a connection over its address's cap waits for one of that address's to end.
const PER_IP_WAIT: Duration = Duration::from_secs(30);

/// Bounds on the connections one server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections at once, in all.
    pub total_max: usize,
    /// Connections served at once from one IP address; as many more wait (up to 30 s) for
    /// one of them to end, and the rest are closed at once.
    pub per_ip_max: usize,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { total_max: 1_000, per_ip_max: 64, idle_timeout: Duration::from_secs(120) }
    }
}

/// One address's connections: a semaphore of `per_ip_max` permits, and how many connections
/// (served or waiting) it has.
type AddressSlots = (Arc<tokio::sync::Semaphore>, usize);

/// Connections per address.
#[derive(Clone, Default)]
struct PerIp(Arc<Mutex<BTreeMap<IpAddr, AddressSlots>>>);

/// One connection counted against its address (served or waiting); released on drop.
struct IpSlot {
    counts: PerIp,
    ip: IpAddr,
    semaphore: Arc<tokio::sync::Semaphore>,
}

impl PerIp {
    /// A slot for one more connection from `ip`, unless it already has `max` served and `max`
    /// waiting.
    fn slot(&self, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut counts = self.0.lock().expect("never poisoned");
        let (semaphore, users) =
            counts.entry(ip).or_insert_with(|| (Arc::new(tokio::sync::Semaphore::new(max)), 0));
        if *users >= 2 * max {
            return None;
        }
        *users += 1;
        Some(IpSlot { counts: self.clone(), ip, semaphore: semaphore.clone() })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().expect("never poisoned");
        if let Some((_, users)) = counts.get_mut(&self.ip) {
            *users -= 1;
            if *users == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// A stream that records when it last moved a byte.
struct Watched<T> {
    inner: T,
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl<T> Watched<T> {
    fn touch(&self) {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(elapsed, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Serves `methods` on `listener` with `config`, under `limits`, with `cors`; returns the
/// bound address and the handle that stops the server (dropping every handle stops it too).
///
/// # Errors
/// If the listener has no local address.
pub fn serve(
    listener: TcpListener,
    config: ServerConfig,
    methods: impl Into<Methods>,
    limits: ConnectionLimits,
    cors: &Cors,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let address = listener.local_addr()?;
    let methods: Methods = methods.into();
    let (stop, handle) = stop_channel();
    let middleware = tower::ServiceBuilder::new().option_layer(cors.layer());
    let builder = jsonrpsee::server::Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .to_service_builder()
        .max_connections(u32::try_from(limits.total_max).unwrap_or(u32::MAX));
    let total = ConnectionGuard::new(limits.total_max);
    let per_ip = PerIp::default();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stop.clone().shutdown() => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting an RPC connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Over its address's cap a connection waits for one of that address's own to
            // end (an honest client's burst is served late, not refused); past twice the
            // cap it is closed at once.
            let Some(ip_slot) = per_ip.slot(peer.ip(), limits.per_ip_max) else {
                continue;
            };
            let Some(permit) = total.try_acquire() else { continue };
            let _ = stream.set_nodelay(true);
            let last_ms = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let io = Watched { inner: stream, start, last_ms: last_ms.clone() };
            let service = builder.clone().build(methods.clone(), stop.clone());
            let stopped = stop.clone().shutdown();
            tokio::spawn(async move {
                let semaphore = ip_slot.semaphore.clone();
                let waited = tokio::time::timeout(PER_IP_WAIT, semaphore.acquire_owned()).await;
                let Ok(Ok(ip_permit)) = waited else { return };
                let _permits = (permit, ip_permit, ip_slot);
                let idle = async {
                    let tick = (limits.idle_timeout / 4).max(Duration::from_millis(10));
                    loop {
                        tokio::time::sleep(tick).await;
                        let last = Duration::from_millis(last_ms.load(Ordering::Relaxed));
                        if start.elapsed().saturating_sub(last) >= limits.idle_timeout {
                            return;
                        }
                    }
                };
                tokio::select! {
                    _ = serve_with_graceful_shutdown(io, service, stopped) => {}
                    () = idle => {}
                }
            });
        }
    });
    Ok((address, handle))
}
