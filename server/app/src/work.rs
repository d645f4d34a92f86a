//! CPU work off the async executor: decoding, feature extraction and inference.
//!
//! Every request's heavy work runs inside [`Workers::run`], which waits for one of `workers`
//! permits and then runs the closure on one of `workers` long-lived threads, so the executor
//! threads only move bytes. Requests beyond `max_queued` waiting ones are refused at once
//! (UNAVAILABLE) instead of piling up. [`with_extractor`] gives the closure a per-thread
//! [`Extractor`] for a feature configuration, built on first use and reused by every later
//! request on that thread (FFT plans, filterbanks and resamplers are set up once).
//!
//! **Why own threads.** tokio's blocking pool hands each job to whichever thread is idle and
//! starts a new one when none is, so under steady load jobs wandered over a dozen threads
//! that came and went: each built its own extractors and buffers, and each new thread paid
//! for them again. A fixed set of threads, one per permit, keeps those caches warm and the
//! memory they hold bounded (see the soak in `docs/deployment.md`).
//!
//! **Requests that go away.** A request whose deadline passes, or whose client disconnects,
//! is dropped by tonic together with the future waiting in [`Workers::run`]. A job still
//! waiting for a worker then never runs: it leaves the queue (and frees its `max_queued`
//! slot), and if it was handed a worker in the same instant it is skipped before it starts. A
//! job already running cannot be stopped from outside (it is plain blocking code, possibly
//! inside a plugin), so long jobs call [`checkpoint`] between steps (each window of a
//! timeline, each stage of Classify), which fails with [`Error::Cancelled`] once nobody waits
//! for the result: the work stops within one step instead of running to the end.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use prosodia_dsp::pipeline::Extractor;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::repository::FeatureProfile;

/// Extractors cached per thread, at most this many configurations (oldest dropped first).
const EXTRACTORS_PER_THREAD: usize = 8;

thread_local! {
    static EXTRACTORS: RefCell<Vec<(String, Extractor)>> = const { RefCell::new(Vec::new()) };
    /// Set while a job runs on this thread: whether its requester has gone.
    static ABANDONED: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Fails with [`Error::Cancelled`] when the request whose job runs on this thread no longer
/// waits for it (its deadline passed or its client went away); `Ok` otherwise, and outside
/// jobs. Long jobs call it between steps so abandoned work stops early.
pub fn checkpoint() -> Result<()> {
    let gone = ABANDONED.with(|cell| {
        cell.try_borrow().is_ok_and(|f| f.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)))
    });
    if gone {
        return Err(Error::Cancelled("the request was abandoned (deadline or client gone)".into()));
    }
    Ok(())
}

/// Marks a job abandoned when the future waiting for it is dropped before it finished.
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        // Also runs after a normal finish, when nothing reads the flag any more.
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A place in the queue: released however the wait ends, including the waiting future being
/// dropped (a request cancelled while queued must not keep counting against `max_queued`).
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Publishes a job's abandoned flag to [`checkpoint`] on this thread while it runs.
struct CurrentJob;

impl CurrentJob {
    fn enter(flag: Arc<AtomicBool>) -> Self {
        ABANDONED.with(|cell| {
            if let Ok(mut slot) = cell.try_borrow_mut() {
                *slot = Some(flag);
            }
        });
        Self
    }
}

impl Drop for CurrentJob {
    fn drop(&mut self) {
        ABANDONED.with(|cell| {
            if let Ok(mut slot) = cell.try_borrow_mut() {
                *slot = None;
            }
        });
    }
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

/// A job handed to the worker threads.
type Task = Box<dyn FnOnce() + Send + 'static>;

/// The bounded pool that runs CPU work; cheap to clone. Its threads end when the last clone
/// is dropped (a thread inside a job that never returns ends with the process).
#[derive(Debug, Clone)]
pub struct Workers {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_queued: usize,
    tasks: mpsc::Sender<Task>,
    /// Jobs handed to a worker (`prosodia_worker_jobs_total`).
    jobs: prometheus_client::metrics::counter::Counter,
}

impl Workers {
    /// A pool of `workers` threads (at least one) running at most that many jobs at once, with
    /// at most `max_queued` waiting. Fails only when the system refuses a new thread.
    pub fn new(workers: usize, max_queued: usize) -> Result<Self> {
        let workers = workers.max(1);
        let (tasks, inbox) = mpsc::channel::<Task>();
        let inbox = Arc::new(Mutex::new(inbox));
        for i in 0..workers {
            let inbox = Arc::clone(&inbox);
            std::thread::Builder::new()
                .name(format!("prosodia-worker-{i}"))
                .spawn(move || work_loop(&inbox))
                .map_err(|e| Error::Internal(format!("starting worker thread {i}: {e}")))?;
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(workers)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_queued,
            tasks,
            jobs: prometheus_client::metrics::counter::Counter::default(),
        })
    }

    /// Counts the jobs handed to a worker in `jobs` (the server passes its metric).
    pub fn counting(mut self, jobs: prometheus_client::metrics::counter::Counter) -> Self {
        self.jobs = jobs;
        self
    }

    /// Runs `job` on a worker thread once a worker is free; returns its result and the time
    /// spent waiting for the worker.
    ///
    /// Dropping the returned future abandons the job: one still queued never runs, and one
    /// running sees [`checkpoint`] fail (see the module docs).
    pub async fn run<T, F>(&self, job: F) -> Result<(T, Duration)>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let queued = Instant::now();
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let slot = QueueSlot(&self.waiting);
        if waiting >= self.max_queued && self.permits.available_permits() == 0 {
            return Err(Error::Busy(format!(
                "{waiting} requests are already waiting; retry later"
            )));
        }
        let permit = self.permits.clone().acquire_owned().await;
        drop(slot);
        let permit =
            permit.map_err(|_| Error::ModelUnavailable("the server is shutting down".into()))?;
        let queue_time = queued.elapsed();
        let span = tracing::Span::current();
        let abandoned = Arc::new(AtomicBool::new(false));
        let _abandon = AbandonOnDrop(Arc::clone(&abandoned));
        let (done, result) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move || {
            let _permit = permit;
            let _enter = span.enter();
            // A worker may pick the job up after its requester has gone.
            let outcome = if abandoned.load(Ordering::Relaxed) {
                tracing::debug!("skipping a job whose request was abandoned while queued");
                Err(Error::Cancelled("the request was abandoned before its job ran".into()))
            } else {
                let _current = CurrentJob::enter(abandoned);
                // A panic fails this job only; the thread goes on to the next one.
                std::panic::catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| {
                    Err(Error::Internal(format!(
                        "worker failed: the job panicked: {}",
                        panic_text(&*panic)
                    )))
                })
            };
            // The requester may have gone; then nobody reads the outcome.
            let _ = done.send(outcome);
        });
        self.tasks
            .send(task)
            .map_err(|_| Error::Internal("worker failed: the worker threads are gone".into()))?;
        self.jobs.inc();
        let outcome = result
            .await
            .map_err(|_| Error::Internal("worker failed: the job was dropped".into()))?;
        Ok((outcome?, queue_time))
    }
}

/// A worker thread: runs tasks until the pool is dropped.
fn work_loop(inbox: &Mutex<mpsc::Receiver<Task>>) {
    loop {
        // One idle thread waits in `recv` holding the lock, the others wait for the lock.
        let next = match inbox.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match next {
            Ok(task) => task(),
            Err(mpsc::RecvError) => return,
        }
    }
}

/// The message of a panic payload, when it has one.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_frees_up_when_work_ends() {
        let workers = Arc::new(Workers::new(1, 1).unwrap());
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

    /// Occupies the only worker of `workers` until the returned sender is used.
    async fn occupy(workers: &Arc<Workers>) -> (mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, hold) = mpsc::channel::<()>();
        let w = Arc::clone(workers);
        let task = tokio::spawn(async move {
            w.run(move || {
                hold.recv().ok();
                Ok(())
            })
            .await
            .unwrap();
        });
        while workers.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        (release, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_gives_up_in_the_queue_frees_its_slot_and_its_job_never_runs() {
        let workers = Arc::new(Workers::new(1, 2).unwrap());
        let (release, running) = occupy(&workers).await;
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..5 {
            let ran = Arc::clone(&ran);
            let gave_up = tokio::time::timeout(
                Duration::from_millis(20),
                workers.run(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }),
            )
            .await;
            assert!(gave_up.is_err(), "the worker is busy, so the job must still be queued");
        }
        // Five waiters gave up with max_queued = 2: none may still count as waiting.
        assert_eq!(workers.waiting.load(Ordering::SeqCst), 0);
        let w = Arc::clone(&workers);
        let queued = tokio::spawn(async move { w.run(|| Ok(9)).await });
        release.send(()).unwrap();
        running.await.unwrap();
        assert_eq!(queued.await.unwrap().unwrap().0, 9);
        assert_eq!(ran.load(Ordering::SeqCst), 0, "an abandoned job ran");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_job_sees_at_its_next_checkpoint_that_its_request_gave_up() {
        let workers = Workers::new(1, 4).unwrap();
        let steps = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = mpsc::channel();
        let s = Arc::clone(&steps);
        let gave_up = tokio::time::timeout(
            Duration::from_millis(100),
            workers.run(move || {
                let outcome = (0..500).try_for_each(|_| {
                    checkpoint()?;
                    s.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    Ok(())
                });
                done_tx.send(outcome.is_err()).unwrap();
                outcome
            }),
        )
        .await;
        assert!(gave_up.is_err());
        let stopped = done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let steps = steps.load(Ordering::SeqCst);
        assert!(stopped, "the job ran all its steps");
        assert!(steps < 100, "{steps} of 500 steps ran after giving up at about 10");
        // Outside a job, and in a job nobody abandoned, the checkpoint passes.
        checkpoint().unwrap();
        assert!(workers.run(|| checkpoint().map(|()| 1)).await.is_ok());
    }

    #[tokio::test]
    async fn a_panicking_job_fails_only_itself() {
        let workers = Workers::new(1, 4).unwrap();
        let failed = workers.run::<(), _>(|| panic!("job exploded")).await.unwrap_err();
        assert!(matches!(failed, Error::Internal(_)), "{failed:?}");
        assert!(failed.to_string().contains("worker failed"), "{failed}");
        assert!(failed.to_string().contains("job exploded"), "{failed}");
        assert_eq!(workers.run(|| Ok(7)).await.unwrap().0, 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_run_on_a_fixed_set_of_named_threads() {
        let workers = Workers::new(2, 64).unwrap();
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let name = workers
                .run(|| Ok(std::thread::current().name().unwrap_or_default().to_owned()))
                .await
                .unwrap()
                .0;
            names.insert(name);
        }
        assert!(names.len() <= 2, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("prosodia-worker-")), "{names:?}");
    }
}
