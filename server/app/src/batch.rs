//! Dynamic batching: concurrent Classify requests for the same model share one inference call.
//!
//! Each loaded model version gets one [`Batcher`] on its first batched request: a task that
//! takes the first waiting item, keeps collecting until `max_batch_size` items or until the
//! first item has waited `max_batch_delay`, pads them to the longest (zero frames, each item's
//! true length passed to the backend, which masks the padding), and runs the batch on the
//! worker pool. The task does not wait for a batch to finish before collecting the next one,
//! so with several workers several batches run at once. Under light load a request waits at
//! most `max_batch_delay` for company; under heavy load batches fill before the delay ends.
//! Decoding and feature extraction stay per request (they cost the same batched or not);
//! only the model call is shared. A request that gives up (deadline passed, client gone)
//! before its batch runs is left out of it, and a batch nobody waits for any more leaves the
//! worker queue without running.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::runner::{Batch, ModelRunner, RunnerError, RunnerErrorKind};
use crate::work::Workers;

/// How requests are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Most items per model call; 1 turns batching off.
    pub max_batch_size: usize,
    /// Longest time the first item of a batch waits for others.
    pub max_batch_delay: Duration,
}

impl BatchPolicy {
    /// Whether requests are batched at all.
    pub fn enabled(&self) -> bool {
        self.max_batch_size > 1
    }
}

/// One request's model input and where its answer goes.
struct Item {
    data: Vec<f32>,
    frames: usize,
    width: usize,
    reply: oneshot::Sender<Answer>,
}

/// An item's scores and the size of the model call they came from.
type Answer = Result<(Vec<f32>, usize), RunnerError>;

/// The batching queue of one model version; dropping the last handle ends its task.
#[derive(Debug, Clone)]
pub struct Batcher {
    queue: mpsc::UnboundedSender<Item>,
}

/// What an item got back: its raw scores and the size of the batch it ran in.
#[derive(Debug, Clone, PartialEq)]
pub struct Batched {
    /// The runner's output for this item (`classes` values).
    pub scores: Vec<f32>,
    /// Items in the model call that produced it.
    pub batch_size: usize,
}

impl Batcher {
    /// Starts the batching task for `runner` with `classes` outputs per item.
    pub fn spawn(
        runner: Arc<dyn ModelRunner>,
        classes: usize,
        policy: BatchPolicy,
        workers: Workers,
    ) -> Self {
        let (queue, incoming) = mpsc::unbounded_channel();
        tokio::spawn(collect(incoming, runner, classes, policy, workers));
        Self { queue }
    }

    /// Queues one `[frames, width]` input and waits for its scores.
    pub async fn run(&self, data: Vec<f32>, frames: usize, width: usize) -> Result<Batched> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Item { data, frames, width, reply })
            .map_err(|_| Error::ModelUnavailable("the model was unloaded".into()))?;
        let (scores, batch_size) = answer
            .await
            .map_err(|_| Error::Internal("the batch carrying this request was dropped".into()))??;
        Ok(Batched { scores, batch_size })
    }
}

async fn collect(
    mut incoming: mpsc::UnboundedReceiver<Item>,
    runner: Arc<dyn ModelRunner>,
    classes: usize,
    policy: BatchPolicy,
    workers: Workers,
) {
    while let Some(first) = incoming.recv().await {
        let deadline = tokio::time::Instant::now() + policy.max_batch_delay;
        let mut items = vec![first];
        while items.len() < policy.max_batch_size {
            match tokio::time::timeout_at(deadline, incoming.recv()).await {
                Ok(Some(item)) => items.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        let runner = Arc::clone(&runner);
        let workers = workers.clone();
        tokio::spawn(async move {
            // Requests that gave up while the batch was collected are left out.
            items.retain(|item| !item.reply.is_closed());
            if items.is_empty() {
                return;
            }
            let (mut replies, job): (Vec<_>, _) = prepare(items);
            let run = workers.run(move || Ok(run_padded(runner.as_ref(), &job, classes)));
            let result = tokio::select! {
                r = run => r,
                // Every requester gave up while the batch waited for a worker: dropping `run`
                // takes it off the queue.
                () = all_closed(&mut replies) => return,
            };
            let per_item: Vec<Answer> = match result {
                Ok((outcome, _queued)) => outcome,
                Err(e) => {
                    let e = RunnerError::new(RunnerErrorKind::Internal, e.to_string());
                    replies.iter().map(|_| Err(e.clone())).collect()
                }
            };
            for (reply, answer) in replies.into_iter().zip(per_item) {
                // A client that went away no longer waits for its answer.
                let _ = reply.send(answer);
            }
        });
    }
}

/// Completes once no reply is awaited any more.
async fn all_closed(replies: &mut [oneshot::Sender<Answer>]) {
    for reply in replies {
        reply.closed().await;
    }
}

/// The inputs of a batch: `(values, frames, width)` per item.
struct Job {
    inputs: Vec<(Vec<f32>, usize, usize)>,
}

fn prepare(items: Vec<Item>) -> (Vec<oneshot::Sender<Answer>>, Job) {
    let mut replies = Vec::with_capacity(items.len());
    let mut inputs = Vec::with_capacity(items.len());
    for item in items {
        replies.push(item.reply);
        inputs.push((item.data, item.frames, item.width));
    }
    (replies, Job { inputs })
}

/// Runs every item, padded into one model call per distinct width (a model has one width, but
/// a mismatch must fail alone, not break its neighbours); returns each item's answer.
fn run_padded(runner: &dyn ModelRunner, job: &Job, classes: usize) -> Vec<Answer> {
    let started = Instant::now();
    let mut out: Vec<Option<Answer>> = vec![None; job.inputs.len()];
    let mut widths: Vec<usize> = job.inputs.iter().map(|i| i.2).collect();
    widths.sort_unstable();
    widths.dedup();
    for width in widths {
        let members: Vec<usize> =
            (0..job.inputs.len()).filter(|&i| job.inputs[i].2 == width).collect();
        let longest = members.iter().map(|&i| job.inputs[i].1).max().unwrap_or(1).max(1);
        let mut data = vec![0.0f32; members.len() * longest * width];
        let mut lengths = Vec::with_capacity(members.len());
        for (slot, &i) in members.iter().enumerate() {
            let (values, frames, _) = &job.inputs[i];
            let start = slot * longest * width;
            data[start..start + values.len()].copy_from_slice(values);
            lengths.push((*frames).max(1));
        }
        let batch =
            Batch { data: &data, n: members.len(), t: longest, f: width, lengths: &lengths };
        let result = batch.check().and_then(|()| runner.run(&batch)).and_then(|scores| {
            if scores.len() == members.len() * classes {
                Ok(scores)
            } else {
                Err(RunnerError::new(
                    RunnerErrorKind::Internal,
                    format!(
                        "the model returned {} scores for {} items × {classes} labels",
                        scores.len(),
                        members.len()
                    ),
                ))
            }
        });
        for (slot, &i) in members.iter().enumerate() {
            out[i] = Some(match &result {
                Ok(scores) => {
                    Ok((scores[slot * classes..(slot + 1) * classes].to_vec(), members.len()))
                }
                Err(e) => Err(e.clone()),
            });
        }
    }
    tracing::debug!(
        items = job.inputs.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "batch ran"
    );
    out.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(RunnerError::new(RunnerErrorKind::Internal, "batch item was not run"))
            })
        })
        .collect()
}
