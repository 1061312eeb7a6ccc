//! Serving on several threads, each with a single-threaded Tokio runtime of its
//! own.
//!
//! On Tokio's multi-threaded runtime an idle worker is woken whenever another
//! has a task to run, in case it can steal it. At a few thousand calls a second
//! most of those wake-ups find nothing to do, and they cost a gateway call both
//! CPU and latency (`BENCHMARKS.md`, "One runtime per serving thread"). Here one thread
//! accepts connections and hands each to one of `n` threads in turn; the thread
//! serves every request of that connection, and its upstream calls, on its own
//! runtime, waking no other thread. The state behind the requests (sessions,
//! the audit log, the policy engine) is shared as before.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// The mark of the next serving thread's runtime ([`zt4ai_mcp::set_reactor`]):
/// unique in the process, so that no runtime takes a connection that a
/// runtime gone before it opened.
static NEXT_REACTOR: AtomicUsize = AtomicUsize::new(1);

/// The connections handed to one serving thread.
struct Handed {
    rx: mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for Handed {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some((stream, peer)) = self.rx.recv().await else {
                // The acceptor has stopped: so does serving, through the
                // shutdown signal; nothing more comes.
                return std::future::pending().await;
            };
            // Registered with this thread's runtime, which polls it from now on.
            match TcpStream::from_std(stream) {
                Ok(s) => return (s, peer),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "connection dropped: cannot register it")
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serves `app` on `listener` with `threads` serving threads until `shutdown`
/// completes, then stops accepting and lets every thread drain its in-flight
/// requests. Accepting runs on the caller's runtime. An error starting a
/// thread's runtime is returned once the others have drained.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    threads: NonZeroUsize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let mut hands = Vec::with_capacity(threads.get());
    let mut done = Vec::with_capacity(threads.get());
    for i in 0..threads.get() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (finished, finish) = oneshot::channel::<std::io::Result<()>>();
        let app = app.clone();
        let mut stopped = stopped.clone();
        std::thread::Builder::new()
            .name(format!("zt4ai-http-{i}"))
            .spawn(move || {
                // Upstream connections opened here are reused only here.
                zt4ai_mcp::set_reactor(NEXT_REACTOR.fetch_add(1, Ordering::Relaxed));
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|rt| {
                        rt.block_on(async move {
                            axum::serve(Handed { rx, local }, app)
                                .with_graceful_shutdown(async move {
                                    // A dropped sender stops it too.
                                    let _ = stopped.wait_for(|s| *s).await;
                                })
                                .await
                        })
                    });
                if let Err(e) = &served {
                    tracing::error!(thread = i, error = %e, "serving thread stopped");
                }
                let _ = finished.send(served);
            })?;
        hands.push(tx);
        done.push(finish);
    }
    accept(&listener, &hands, shutdown).await;
    drop(listener);
    drop(hands);
    let _ = stop.send(true);
    let mut result = Ok(());
    for (i, finish) in done.into_iter().enumerate() {
        let outcome = finish.await.unwrap_or_else(|_| {
            Err(std::io::Error::other(format!(
                "serving thread {i} ended without a result (it panicked)"
            )))
        });
        if let Err(e) = outcome
            && result.is_ok()
        {
            result = Err(e);
        }
    }
    result
}

/// Accepts connections and hands them to the serving threads in turn, until
/// `shutdown` completes or no thread is left.
async fn accept(
    listener: &TcpListener,
    hands: &[mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>],
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = pin!(shutdown);
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::error!(error = %e, "cannot accept a connection; retrying in 1 s");
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        // Streamed answers (MCP's server-sent events) go out in several writes;
        // without TCP_NODELAY, Nagle's algorithm and delayed ACKs hold each one.
        let _ = tcp.set_nodelay(true);
        let mut conn = match tcp.into_std() {
            Ok(s) => (s, peer),
            Err(e) => {
                tracing::warn!(%peer, error = %e, "connection dropped: cannot hand it over");
                continue;
            }
        };
        // The next thread that is still serving.
        let mut tried = 0;
        loop {
            if tried == hands.len() {
                tracing::error!("no serving thread is left; no longer accepting");
                return;
            }
            let hand = &hands[next];
            next = (next + 1) % hands.len();
            tried += 1;
            match hand.send(conn) {
                Ok(()) => break,
                Err(mpsc::error::SendError(back)) => conn = back,
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}
