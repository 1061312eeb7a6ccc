//! HTTP/1.1 connections to one upstream server, each polled by the task that
//! uses it.
//!
//! hyper's pooled client runs every connection in a task of its own and hands
//! each request and answer across channels between that task and the caller's.
//! On a loaded gateway those hand-offs (a wake-up each way, often a thread hop)
//! cost a noticeable share of a call (see `BENCHMARKS.md`). Here the task making
//! a call takes an idle connection, writes the request, reads the answer and
//! puts the connection back, polling it itself throughout. An idle connection
//! is polled by no one; one the server has closed meanwhile is noticed when it
//! is taken, and a request that could not be written on it goes out once more
//! on a new one. A request that may have reached the server is never repeated.
//!
//! A TCP connection belongs to the Tokio runtime it was opened on: that
//! runtime's thread is woken when data arrives on it. The gateway serves its
//! HTTP on several single-threaded runtimes, so a connection is only ever
//! taken again by a call on the runtime that opened it (see [`set_reactor`]);
//! a call on another would be woken through that runtime's thread.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tower_service::Service as _;

/// Makes TCP and TLS connections; shared by every upstream.
pub(crate) type Connector = HttpsConnector<HttpConnector>;
type Stream = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// The most idle connections kept per upstream server.
const MAX_IDLE: usize = 256;
/// How long an idle connection is kept.
const IDLE_FOR: Duration = Duration::from_secs(60);
/// The most bytes read past the answer to make a connection reusable.
const MAX_DRAIN: usize = 64 * 1024;

thread_local! {
    static REACTOR: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as running Tokio runtime `id` (its own I/O
/// driver): connections opened on it are reused only by calls on threads with
/// the same mark. Threads that never call this share the mark 0, right for the
/// threads of one multi-threaded runtime, which share one driver.
pub fn set_reactor(id: usize) {
    REACTOR.with(|r| r.set(id));
}

fn reactor() -> usize {
    REACTOR.with(Cell::get)
}

/// One connection: its request handle and the connection state machine.
struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
    io: Io,
    /// The runtime it was opened on ([`set_reactor`]).
    reactor: usize,
}

struct Io {
    conn: http1::Connection<Stream, Full<Bytes>>,
    /// False once the connection has ended; it is not polled after that.
    open: bool,
}

impl Io {
    /// Lets the connection make progress; false once it has ended.
    fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        if self.open && self.conn.poll_without_shutdown(cx).is_ready() {
            self.open = false;
        }
        self.open
    }
}

/// The connections to one upstream server.
pub(crate) struct Pool {
    connector: Connector,
    /// Idle connections, the most recently used last.
    idle: Mutex<Vec<(Box<Conn>, Instant)>>,
}

impl Pool {
    pub(crate) fn new(connector: Connector) -> Self {
        Pool {
            connector,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `req` and hands the answer to `read`, polling the connection in
    /// this task until `read` is done. The connection goes back to the pool if
    /// the answer was read to its end (or its end arrives at once) and the
    /// server keeps it open. Errors are for the log.
    pub(crate) async fn exchange<R>(
        &self,
        mut req: Request<Full<Bytes>>,
        read: impl AsyncFnOnce(&mut Response<Incoming>) -> R,
    ) -> Result<R, String> {
        let (mut conn, mut resp) = loop {
            let (mut c, reused) = match self.take().await {
                Some(c) => (c, true),
                // Boxed: rarely taken, and large (TCP and TLS set-up).
                None => (Box::pin(self.connect(req.uri())).await?, false),
            };
            match drive(&mut c.io, c.send.try_send_request(req)).await {
                Ok(resp) => break (c, resp),
                Err(mut e) => match e.take_message() {
                    // Not written: the server closed the idle connection.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(crate::client::error_chain(e.error())),
                },
            }
        };
        let out = drive(&mut conn.io, read(&mut resp)).await;
        if settle(&mut conn, resp.body_mut()).await {
            self.put(conn);
        }
        Ok(out)
    }

    async fn connect(&self, uri: &Uri) -> Result<Box<Conn>, String> {
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| crate::client::error_chain(&*e))?;
        let stream = connector
            .call(uri.clone())
            .await
            .map_err(|e| crate::client::error_chain(&*e))?;
        let (send, conn) = http1::handshake(stream)
            .await
            .map_err(|e| crate::client::error_chain(&e))?;
        // Boxed: a connection (TLS state included) is large, and it moves
        // between the pool and the futures of the calls that use it.
        Ok(Box::new(Conn {
            send,
            io: Io { conn, open: true },
            reactor: reactor(),
        }))
    }

    /// The most recently used idle connection of this thread's runtime that
    /// is still open.
    async fn take(&self) -> Option<Box<Conn>> {
        let mine = reactor();
        loop {
            let mut c = {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                let at = idle.iter().rposition(|(c, _)| c.reactor == mine)?;
                let (c, since) = idle.remove(at);
                if since.elapsed() > IDLE_FOR {
                    // Those before it are older still.
                    idle.retain(|(_, since)| since.elapsed() <= IDLE_FOR);
                    return None;
                }
                c
            };
            // A connection the server has closed ends when polled.
            if poll_fn(|cx| Poll::Ready(c.io.poll(cx) && c.send.is_ready())).await {
                return Some(c);
            }
        }
    }

    fn put(&self, conn: Box<Conn>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }
}

/// Polls `work` to completion, letting the connection make progress between
/// polls (it writes the request and reads the answer `work` waits for).
async fn drive<F: Future>(io: &mut Io, work: F) -> F::Output {
    let mut work = pin!(work);
    poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        io.poll(cx);
        work.as_mut().poll(cx)
    })
    .await
}

/// Whether the connection can serve another request: the rest of the answer
/// (typically the end of an event stream after the event that answered) is
/// read if it is already here, and the server has not closed the connection.
/// Never waits.
async fn settle(conn: &mut Conn, body: &mut Incoming) -> bool {
    poll_fn(|cx| {
        let mut drained = 0usize;
        let mut waiting = 0;
        let mut ended = body.is_end_stream();
        // Each round lets the connection deliver what the body asked for.
        for _ in 0..32 {
            if !conn.io.poll(cx) {
                return Poll::Ready(false);
            }
            if ended {
                if conn.send.is_ready() {
                    return Poll::Ready(true);
                }
                waiting += 1;
            } else {
                match std::pin::Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(None) => ended = true,
                    Poll::Ready(Some(Ok(frame))) => {
                        drained += frame.data_ref().map_or(0, Bytes::len);
                        if drained > MAX_DRAIN {
                            return Poll::Ready(false);
                        }
                        waiting = 0;
                    }
                    Poll::Ready(Some(Err(_))) => return Poll::Ready(false),
                    Poll::Pending => waiting += 1,
                }
            }
            if waiting > 2 {
                return Poll::Ready(false);
            }
        }
        Poll::Ready(false)
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// How the hand-written server behaves after reading a request.
    #[derive(Clone, Copy)]
    enum Mode {
        /// Answers with a JSON body and keeps the connection.
        Json,
        /// Answers with two events in one write and keeps the connection.
        Events,
        /// Answers with one event, then the end of the stream 50 ms later.
        SlowEnd,
        /// Answers, then closes the connection without saying so.
        CloseAfter,
        /// Closes the connection without answering.
        Hangup,
    }

    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        requests: AtomicUsize,
    }

    /// A plain HTTP/1.1 server on loopback, written out byte by byte so that
    /// the test decides when connections close.
    async fn server(mode: Mode) -> (Uri, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/mcp", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let seen = Arc::new(Seen::default());
        let counts = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                counts.connections.fetch_add(1, Ordering::SeqCst);
                let counts = Arc::clone(&counts);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // One request: its head, then its declared body.
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < head_end + len {
                            let mut chunk = [0u8; 4096];
                            let n = s.read(&mut chunk).await.unwrap();
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        buf.drain(..head_end + len);
                        counts.requests.fetch_add(1, Ordering::SeqCst);
                        let events = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n";
                        match mode {
                            Mode::Json | Mode::CloseAfter => {
                                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}").await.unwrap();
                                if matches!(mode, Mode::CloseAfter) {
                                    return;
                                }
                            }
                            Mode::Events => {
                                s.write_all(
                                    format!("{events}9\r\ndata: 2\n\n\r\n0\r\n\r\n").as_bytes(),
                                )
                                .await
                                .unwrap();
                            }
                            Mode::SlowEnd => {
                                s.write_all(events.as_bytes()).await.unwrap();
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                s.write_all(b"0\r\n\r\n").await.unwrap();
                            }
                            Mode::Hangup => return,
                        }
                    }
                });
            }
        });
        (uri, seen)
    }

    fn pool() -> Pool {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Pool::new(crate::client::connector().unwrap())
    }

    fn post(uri: &Uri) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(Bytes::from_static(b"{\"a\":1}")));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri.clone();
        req
    }

    /// Reads the first frame of the answer only, as the client does when the
    /// first event answers its request.
    async fn first_frame(resp: &mut Response<Incoming>) -> Bytes {
        let frame = resp.body_mut().frame().await.unwrap().unwrap();
        frame.into_data().unwrap()
    }

    #[tokio::test]
    async fn calls_in_turn_share_one_connection() {
        for mode in [Mode::Json, Mode::Events] {
            let (uri, seen) = server(mode).await;
            let pool = pool();
            for _ in 0..5 {
                let first = pool.exchange(post(&uri), first_frame).await.unwrap();
                assert!(!first.is_empty());
            }
            assert_eq!(seen.requests.load(Ordering::SeqCst), 5);
            assert_eq!(
                seen.connections.load(Ordering::SeqCst),
                1,
                "the rest of the answer was already there, so the connection was kept"
            );
        }
    }

    #[test]
    fn a_connection_is_reused_only_on_the_runtime_that_opened_it() {
        let server_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (uri, seen) = server_rt.block_on(server(Mode::Json));
        let pool = Arc::new(pool());
        // Two threads, each with a runtime of its own, take turns: 1, 2, 1.
        let (go_1, turn_1) = std::sync::mpsc::channel::<usize>();
        let (go_2, turn_2) = std::sync::mpsc::channel::<usize>();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let threads: Vec<_> = [(1, turn_1), (2, turn_2)]
            .into_iter()
            .map(|(id, turns)| {
                let (pool, uri, done) = (Arc::clone(&pool), uri.clone(), done.clone());
                std::thread::spawn(move || {
                    set_reactor(id);
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    for calls in turns {
                        rt.block_on(async {
                            for _ in 0..calls {
                                pool.exchange(post(&uri), first_frame).await.unwrap();
                            }
                        });
                        done.send(()).unwrap();
                    }
                })
            })
            .collect();
        for (go, calls) in [(&go_1, 3), (&go_2, 3), (&go_1, 2)] {
            go.send(calls).unwrap();
            finished.recv().unwrap();
        }
        drop((go_1, go_2));
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(seen.requests.load(Ordering::SeqCst), 8);
        assert_eq!(
            seen.connections.load(Ordering::SeqCst),
            2,
            "one connection per runtime: the second runtime did not take the first's, and the first kept its own"
        );
    }

    #[tokio::test]
    async fn an_answer_whose_end_is_not_there_yet_costs_its_connection() {
        let (uri, seen) = server(Mode::SlowEnd).await;
        let pool = pool();
        for _ in 0..3 {
            assert_eq!(
                pool.exchange(post(&uri), first_frame).await.unwrap(),
                "data: 1\n\n"
            );
        }
        // Never waited for: each call opened its own connection.
        assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced_and_the_request_sent_once() {
        let (uri, seen) = server(Mode::CloseAfter).await;
        let pool = pool();
        for _ in 0..3 {
            pool.exchange(post(&uri), first_frame).await.unwrap();
            // Let the server's close arrive before the connection is taken again.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen.requests.load(Ordering::SeqCst), 3, "none sent twice");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_that_reached_the_server_is_not_repeated() {
        let (uri, seen) = server(Mode::Hangup).await;
        let pool = pool();
        let err = pool.exchange(post(&uri), first_frame).await.unwrap_err();
        assert!(!err.is_empty());
        assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
    }
}
