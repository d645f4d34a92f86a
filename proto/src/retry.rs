//! Retrying unary calls that fail with `UNAVAILABLE`, with capped exponential backoff.
//!
//! `UNAVAILABLE` is the status gRPC gives for a server that cannot take the call at all: the
//! connection was refused or lost, a load balancer found no live replica (nginx's HTTP 502 and
//! 503 map to it), or the server's queue is full (`max_queued`). A unary call that got it may be
//! sent again, here or to another replica. Every other status is final: retrying a request
//! the server refused (`INVALID_ARGUMENT`, `NOT_FOUND`...) or gave up on (`DEADLINE_EXCEEDED`)
//! would only repeat it.
//!
//! The backoff follows gRPC's own retry policy: before retry `n` (1-based) the client waits a
//! random time between 0 and `min(initial_backoff * multiplier^(n-1), max_backoff)`, so
//! clients that failed together do not come back together. The defaults (4 retries, so 5
//! attempts; 100 ms, doubling, capped at 2 s) are those of the Python client's service config,
//! and wait at most 1.5 s in all.
//!
//! Only unary calls are retried. A `StreamClassify` stream has already sent audio and received
//! results when it breaks, so sending it again would not be the same request; a broken stream
//! ends with its status, and the caller decides.
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

    /// Whether a call that ended with `status` may be sent again.
    pub fn is_retryable(status: &Status) -> bool {
        status.code() == Code::Unavailable
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

    /// Runs `attempt` until it succeeds, fails with a status other than `UNAVAILABLE`, or has
    /// been retried [`retries`](Self::retries) times; returns the last result.
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
