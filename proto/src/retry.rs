//! Retrying unary calls that fail with `UNAVAILABLE`, with capped exponential backoff.
//!
//! `UNAVAILABLE` is the status gRPC gives for a server that cannot take the call at all: the
//! connection was refused or lost, a load balancer found no live replica, or the server's
//! queue is full (`max_queued`). A unary call that got it may be sent again, here or to another
//! replica. Every other status is final: retrying a request the server refused
//! (`INVALID_ARGUMENT`, `NOT_FOUND`...) or gave up on (`DEADLINE_EXCEEDED`) would only repeat it.
//!
//! One more answer counts as `UNAVAILABLE`: a proxy's HTTP 502, 503 or 504 *page* (nginx's
//! default when no replica could take a call). gRPC maps those HTTP statuses to `UNAVAILABLE`,
//! but tonic tries to read the HTML page as a gRPC message first and reports `INTERNAL`
//! ("... while receiving response with status: 502 Bad Gateway"); [`RetryPolicy::is_retryable`]
//! recognises that message. `deploy/scale-out.sh`'s nginx answers such calls with a real
//! gRPC `UNAVAILABLE` instead (`error_page`).
//!
//! The backoff follows gRPC's own retry policy: before retry `n` (1-based) the client waits a
//! random time between 0 and `min(initial_backoff * multiplier^(n-1), max_backoff)`, so
//! clients that failed together do not come back together. The defaults (4 retries, so 5
//! attempts; 100 ms, doubling, capped at 2 s) are those of the Python client's service config,
//! and wait at most 1.5 s in all.
//!
//! A unary call cut off at the transport level, with no gRPC status from any server, is
//! retried as well: nginx resets the client's HTTP/2 stream (`RST_STREAM`, `INTERNAL_ERROR`)
//! when the replica behind it dies after it began to answer, and tonic reports `INTERNAL`
//! ("h2 protocol error") or `UNKNOWN` ("transport error"); [`stream_cut_off`] tells these
//! apart from an `INTERNAL` a server sent. Such a call may have run on the dead replica, so
//! this policy is for idempotent calls only: Prosodia's CLI uses it for reads (`Classify`,
//! `Models.GetModel`), which give the same answer twice.
//!
//! Only unary calls are retried. A `StreamClassify` stream has already sent audio and received
//! results when it breaks, so sending it again would not be the same request; a broken stream
//! ends with its status, and the caller decides. [`stream_cut_off`] names the case of a stream
//! whose server went away: nginx resets the client's stream (HTTP/2 `RST_STREAM` with
//! `INTERNAL_ERROR`, which tonic reads as `INTERNAL`) when the replica behind it dies.
//!
//! A call that never left this client is retried whatever it was: hyper cancels the requests
//! it had queued for a connection that closed before sending them, and tonic reports those as
//! `CANCELLED` ("operation was canceled"). gRPC calls this a transparent retry. It happens
//! when a proxy ends a connection on purpose: nginx sends `GOAWAY` after `keepalive_requests`
//! (1000 by default) calls on one client connection, and a call queued at that moment is
//! cancelled unsent. [`RetryPolicy::never_sent`] recognises it by hyper's own error kind, so
//! a call this program cancelled, or a `CANCELLED` a server sent, is not resent.
//!
//! ```no_run
//! # async fn example(client: prosodia_proto::pb::emotion_client::EmotionClient<tonic::transport::Channel>,
//! #                  request: prosodia_proto::pb::ClassifyRequest) -> Result<(), tonic::Status> {
//! use prosodia_proto::retry::RetryPolicy;
//! let policy = RetryPolicy::default();
//! let reply = policy
//!     .call(|| {
//!         let (mut client, request) = (client.clone(), request.clone());
//!         async move { client.classify(request).await }
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tonic::{Code, Status};

/// How many times, and how patiently, a unary call is retried on `UNAVAILABLE`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 sends each call once.
    pub retries: u32,
    /// The most the first retry waits.
    pub initial_backoff: Duration,
    /// The most any retry waits.
    pub max_backoff: Duration,
    /// Growth of the wait from one retry to the next.
    pub multiplier: f64,
}

/// Retries of [`RetryPolicy::default`].
pub const DEFAULT_RETRIES: u32 = 4;

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: DEFAULT_RETRIES,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// The default backoff with `retries` retries (0: none).
    pub fn with_retries(retries: u32) -> Self {
        Self { retries, ..Self::default() }
    }

    /// Whether a call that ended with `status` may be sent again: `UNAVAILABLE`, a proxy's
    /// HTTP 502, 503 or 504 error page that tonic read as `INTERNAL`, a call that was
    /// [never sent](Self::never_sent), or one [cut off](stream_cut_off) at the transport
    /// level as an `INTERNAL` or `UNKNOWN` (see the module docs).
    pub fn is_retryable(status: &Status) -> bool {
        match status.code() {
            Code::Unavailable => true,
            Code::Cancelled => Self::never_sent(status),
            Code::Internal | Code::Unknown => {
                let m = status.message();
                let gateway_page = ["502", "503", "504"].iter().any(|code| {
                    m.contains(&format!("while receiving response with status: {code}"))
                });
                gateway_page || stream_cut_off(status).is_some()
            }
            _ => false,
        }
    }

    /// Whether `status` is the `CANCELLED` that hyper gives a request it dropped unsent,
    /// because its connection closed (or was not ready) before the request could go out.
    pub fn never_sent(status: &Status) -> bool {
        if status.code() != Code::Cancelled {
            return false;
        }
        causes(status)
            .any(|e| e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_canceled))
    }

    /// The longest wait before retry `n` (1-based):
    /// `min(initial_backoff * multiplier^(n-1), max_backoff)`.
    pub fn backoff_cap(&self, n: u32) -> Duration {
        let exponent = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
        let scaled = self.initial_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let cap = self.max_backoff.as_secs_f64();
        Duration::try_from_secs_f64(scaled.min(cap)).unwrap_or(self.max_backoff)
    }

    /// The wait before retry `n`: uniformly random in `0..=backoff_cap(n)`.
    pub fn backoff(&self, n: u32) -> Duration {
        let unit = (random_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.backoff_cap(n).mul_f64(unit)
    }

    /// Runs `attempt` until it succeeds, fails with a status that is not
    /// [retryable](Self::is_retryable), or has been retried [`retries`](Self::retries) times; returns the last result.
    pub async fn call<T, F, Fut>(&self, attempt: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.call_notify(attempt, |_, _, _| {}).await
    }

    /// As [`call`](Self::call), telling `on_retry` about each retry before its wait: the
    /// status that caused it, the retry's number (1-based) and the wait.
    pub async fn call_notify<T, F, Fut>(
        &self,
        mut attempt: F,
        mut on_retry: impl FnMut(&Status, u32, Duration),
    ) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut retry = 0;
        loop {
            match attempt().await {
                Err(status) if retry < self.retries && Self::is_retryable(&status) => {
                    retry += 1;
                    let wait = self.backoff(retry);
                    on_retry(&status, retry, wait);
                    tokio::time::sleep(wait).await;
                }
                result => return result,
            }
        }
    }
}

/// `UNAVAILABLE`, when `status` ended a stream that was cut off at the transport level with
/// no gRPC status from the server: the peer reset the HTTP/2 stream or closed the connection
/// (what nginx does when the replica serving the stream dies), or the connection failed, and
/// tonic reported it as `INTERNAL`, `UNKNOWN` or `CANCELLED`. That is the code gRPC gives a
/// call whose connection broke, and it says what happened: the server went away, not that it
/// failed on the request. `None` for every other status, including every status a server sent.
pub fn stream_cut_off(status: &Status) -> Option<Status> {
    if !matches!(status.code(), Code::Internal | Code::Unknown | Code::Cancelled) {
        return None;
    }
    let lost = causes(status).any(|e| match e.downcast_ref::<h2::Error>() {
        Some(h2) => h2.is_remote() && (h2.is_reset() || h2.is_go_away()) || h2.is_io(),
        None => e.is::<std::io::Error>(),
    });
    lost.then(|| {
        Status::unavailable(format!(
            "the stream was cut off without a gRPC status ({}): its server, or a proxy's \
             connection to it, went away; streams are not resent",
            status.message()
        ))
    })
}

/// The errors behind `status`: its source, that error's source, and so on.
fn causes(status: &Status) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(std::error::Error::source(status), |e| e.source())
}

/// A random number from the standard library's per-process randomly keyed hasher (each
/// `RandomState` gets fresh keys); jitter needs nothing stronger.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn quick(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            multiplier: 2.0,
        }
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    /// Asserts that a call failing once with `status` is sent again and then succeeds.
    fn assert_sent_again(status: Status, what: &str) {
        let count = Cell::new(0);
        let mut failures = vec![status];
        let result = run(quick(2).call(|| {
            count.set(count.get() + 1);
            std::future::ready(failures.pop().map_or(Ok(()), Err))
        }));
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(count.get(), 2, "the {what} call was sent again");
    }

    /// Fails with `codes` in turn, then succeeds with the number of attempts.
    fn attempts(
        codes: Vec<Code>,
        count: &Cell<usize>,
    ) -> impl FnMut() -> std::future::Ready<Result<usize, Status>> + '_ {
        move || {
            let n = count.get();
            count.set(n + 1);
            std::future::ready(match codes.get(n) {
                Some(code) => Err(Status::new(*code, format!("attempt {}", n + 1))),
                None => Ok(n + 1),
            })
        }
    }

    #[test]
    fn unavailable_is_retried_until_it_succeeds() {
        let count = Cell::new(0);
        let mut seen = Vec::new();
        let result = run(quick(4).call_notify(
            attempts(vec![Code::Unavailable, Code::Unavailable], &count),
            |status, n, wait| {
                assert!(wait <= Duration::from_millis(2), "wait {wait:?} over the cap");
                seen.push((status.message().to_owned(), n));
            },
        ));
        assert_eq!(result.expect("the third attempt succeeds"), 3);
        assert_eq!(seen, [("attempt 1".to_owned(), 1), ("attempt 2".to_owned(), 2)]);
    }

    #[test]
    fn the_last_unavailable_is_returned_after_the_retries() {
        let count = Cell::new(0);
        let result = run(quick(2).call(attempts(vec![Code::Unavailable; 10], &count)));
        let status = result.expect_err("every attempt failed");
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "attempt 3");
        assert_eq!(count.get(), 3, "one attempt and two retries");
    }

    #[test]
    fn a_proxys_gateway_error_page_is_retried_like_unavailable() {
        // What tonic 0.14 makes of nginx's HTML 502 page.
        let page = "protocol error: received message with invalid compression flag: 60 (valid \
                    flags are 0 and 1) while receiving response with status: 502 Bad Gateway";
        assert!(RetryPolicy::is_retryable(&Status::internal(page)));
        assert!(RetryPolicy::is_retryable(&Status::internal(page.replace("502 Bad", "503 Ser"))));
        assert!(!RetryPolicy::is_retryable(&Status::internal(page.replace("502", "500"))));
        assert!(!RetryPolicy::is_retryable(&Status::internal("the model failed")));
        assert!(!RetryPolicy::is_retryable(&Status::invalid_argument(page)));
    }

    #[test]
    fn no_retries_sends_once() {
        let count = Cell::new(0);
        let result = run(quick(0).call(attempts(vec![Code::Unavailable], &count)));
        assert_eq!(result.expect_err("it failed").code(), Code::Unavailable);
        assert_eq!(count.get(), 1);
    }

    #[test]
    fn other_codes_are_not_retried() {
        for code in [Code::InvalidArgument, Code::NotFound, Code::DeadlineExceeded, Code::Internal]
        {
            let count = Cell::new(0);
            let result = run(quick(4).call(attempts(vec![code, Code::Unavailable], &count)));
            assert_eq!(result.expect_err("it failed").code(), code);
            assert_eq!(count.get(), 1, "{code:?} was retried");
        }
    }

    #[test]
    fn only_statuses_from_a_lost_connection_are_a_cut_off_stream() {
        let io = || std::sync::Arc::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        let mut lost = Status::internal("h2 protocol error: error reading a body from connection");
        lost.set_source(io());
        let cut = stream_cut_off(&lost).expect("a stream whose connection broke");
        assert_eq!(cut.code(), Code::Unavailable);
        assert!(cut.message().contains("error reading a body"), "{}", cut.message());

        // A status the server sent, or an INTERNAL with no transport error behind it: as is.
        assert!(stream_cut_off(&Status::internal("the model failed")).is_none());
        let mut refused = Status::invalid_argument("bad audio");
        refused.set_source(io());
        assert!(stream_cut_off(&refused).is_none());
        // A reset this side made (not the peer's) is not a lost server either.
        let mut local = Status::internal("reset");
        local.set_source(std::sync::Arc::new(h2::Error::from(h2::Reason::INTERNAL_ERROR)));
        assert!(stream_cut_off(&local).is_none());
    }

    /// A unary call whose connection broke under it (what a client behind nginx sees when the
    /// replica answering it dies) is sent again, as `INTERNAL` or `UNKNOWN`; the same codes
    /// from a server, or from this side's own reset, are final.
    #[test]
    fn a_unary_call_cut_off_at_the_transport_is_retried() {
        let io = || std::sync::Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        for mut cut in
            [Status::internal("h2 protocol error: http2 error"), Status::unknown("transport error")]
        {
            cut.set_source(io());
            assert!(RetryPolicy::is_retryable(&cut), "{cut:?}");
            assert_sent_again(cut, "cut-off");
        }
        assert!(!RetryPolicy::is_retryable(&Status::internal("h2 protocol error: http2 error")));
        assert!(!RetryPolicy::is_retryable(&Status::unknown("the plugin failed")));
        let mut local = Status::internal("reset");
        local.set_source(std::sync::Arc::new(h2::Error::from(h2::Reason::INTERNAL_ERROR)));
        assert!(!RetryPolicy::is_retryable(&local));
        let mut refused = Status::invalid_argument("bad audio");
        refused.set_source(io());
        assert!(!RetryPolicy::is_retryable(&refused));
    }

    /// A request hyper could not send because its HTTP/2 connection had already closed, as
    /// tonic reports it: retried. A `CANCELLED` without hyper's error behind it (a server's,
    /// or this program's own) is not.
    #[test]
    fn a_call_cancelled_unsent_on_a_closed_connection_is_retried() {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let unsent = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async {
                let (near, far) = tokio::io::duplex(1024);
                let (mut sender, connection) =
                    hyper::client::conn::http2::handshake::<_, _, String>(
                        TokioExecutor::new(),
                        TokioIo::new(near),
                    )
                    .await
                    .expect("the preface fits the pipe");
                // The peer goes away before answering: the connection ends, and the sender's
                // next request cannot go out.
                drop(far);
                let _ = connection.await;
                let request = hyper::Request::new(String::new());
                sender.send_request(request).await.expect_err("sent on a closed connection")
            });
        assert!(unsent.is_canceled(), "hyper's error is not `canceled`: {unsent:?}");
        let status = Status::from_error(Box::new(unsent));
        assert_eq!(status.code(), Code::Cancelled, "{status:?}");
        assert!(RetryPolicy::never_sent(&status));
        assert!(RetryPolicy::is_retryable(&status));

        assert_sent_again(status, "unsent");

        assert!(!RetryPolicy::is_retryable(&Status::cancelled("operation was canceled")));
        let mut local = Status::cancelled("the caller gave up");
        local.set_source(std::sync::Arc::new(std::io::Error::other("gave up")));
        assert!(!RetryPolicy::never_sent(&local));
    }

    #[test]
    fn the_backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let caps: Vec<u128> = (1..=7).map(|n| p.backoff_cap(n).as_millis()).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1600, 2000, 2000]);
        for n in 1..=7 {
            for _ in 0..50 {
                assert!(p.backoff(n) <= p.backoff_cap(n));
            }
        }
        // Jitter: 50 draws of the first wait are not all the same.
        let draws: std::collections::BTreeSet<Duration> = (0..50).map(|_| p.backoff(1)).collect();
        assert!(draws.len() > 1, "no jitter: {draws:?}");
    }
}
