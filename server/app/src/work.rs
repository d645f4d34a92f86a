//! CPU work off the async executor: decoding, feature extraction and inference.
//!
//! Every request's heavy work runs inside [`Workers::run`], which waits for one of `workers`
//! permits and then runs the closure on tokio's blocking pool, so the executor threads only
//! move bytes. Requests beyond `max_queued` waiting ones are refused at once (UNAVAILABLE)
//! instead of piling up. [`with_extractor`] gives the closure a per-thread
//! [`Extractor`] for a feature configuration, built on first use and reused by every later
//! request on that thread (FFT plans, filterbanks and resamplers are set up once). Dynamic
//! batching will slot in here: a batcher task collecting frame matrices between extraction
//! and inference.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prosodia_dsp::pipeline::Extractor;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::repository::FeatureProfile;

/// Extractors cached per thread, at most this many configurations (oldest dropped first).
const EXTRACTORS_PER_THREAD: usize = 8;

thread_local! {
    static EXTRACTORS: RefCell<Vec<(String, Extractor)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's extractor for `profile`, creating it on first use.
pub fn with_extractor<T>(
    profile: &FeatureProfile,
    f: impl FnOnce(&mut Extractor) -> Result<T>,
) -> Result<T> {
    EXTRACTORS.with(|cell| {
        let mut cache = cell
            .try_borrow_mut()
            .map_err(|_| Error::Internal("extractor cache re-entered".into()))?;
        let index = match cache.iter().position(|(k, _)| *k == profile.key) {
            Some(i) => i,
            None => {
                if cache.len() >= EXTRACTORS_PER_THREAD {
                    cache.remove(0);
                }
                cache.push((profile.key.clone(), Extractor::new(profile.config.clone())?));
                cache.len() - 1
            }
        };
        f(&mut cache[index].1)
    })
}

/// The bounded pool that runs CPU work; cheap to clone.
#[derive(Debug, Clone)]
pub struct Workers {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_queued: usize,
}

impl Workers {
    /// A pool running at most `workers` jobs at once with at most `max_queued` waiting.
    pub fn new(workers: usize, max_queued: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(workers.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_queued,
        }
    }

    /// Runs `job` on the blocking pool once a worker is free; returns its result and the time
    /// spent waiting for the worker.
    pub async fn run<T, F>(&self, job: F) -> Result<(T, Duration)>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let queued = Instant::now();
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        if waiting >= self.max_queued && self.permits.available_permits() == 0 {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Busy(format!(
                "{waiting} requests are already waiting; retry later"
            )));
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit =
            permit.map_err(|_| Error::ModelUnavailable("the server is shutting down".into()))?;
        let queue_time = queued.elapsed();
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _enter = span.enter();
            job()
        })
        .await
        .map_err(|e| Error::Internal(format!("worker failed: {e}")))?;
        Ok((result?, queue_time))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_frees_up_when_work_ends() {
        let workers = Arc::new(Workers::new(1, 1));
        let (release, hold) = mpsc::channel::<()>();
        let running = {
            let workers = Arc::clone(&workers);
            tokio::spawn(async move {
                workers
                    .run(move || {
                        hold.recv().ok();
                        Ok(1)
                    })
                    .await
            })
        };
        while workers.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let queued = {
            let workers = Arc::clone(&workers);
            tokio::spawn(async move { workers.run(|| Ok(2)).await })
        };
        while workers.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = workers.run(|| Ok(3)).await.unwrap_err();
        assert!(matches!(refused, Error::Busy(_)), "{refused:?}");
        assert!(refused.to_string().contains("already waiting"), "{refused}");
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap().unwrap().0, 1);
        assert_eq!(queued.await.unwrap().unwrap().0, 2);
        assert_eq!(workers.run(|| Ok(4)).await.unwrap().0, 4);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_only_itself() {
        let workers = Workers::new(1, 4);
        let failed = workers.run::<(), _>(|| panic!("job exploded")).await.unwrap_err();
        assert!(matches!(failed, Error::Internal(_)), "{failed:?}");
        assert!(failed.to_string().contains("worker failed"), "{failed}");
        assert_eq!(workers.run(|| Ok(7)).await.unwrap().0, 7);
    }
}
