//! The way into a component link: every stanza for XMPP passes through one recorder task
//! per link, in order. It stores message rows and durable stanzas in the outbox with group
//! commit (one transaction for whatever has queued up), then hands the stanzas to the link.
//! So a message is stored before anything about it is written, per-room order is kept, and
//! a busy room costs one commit per batch instead of one per message.

use super::component::Queued;
use super::outbound::Outgoing;
use crate::metrics::Metrics;
use crate::store::{MessageRow, Record, Store};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Jobs taken in one transaction at most.
const GROUP: usize = 256;
/// How long a batch keeps gathering jobs while they keep coming (measured: 1 ms gave
/// larger commits and more throughput than none, BENCHMARKS.md).
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// A counter to bump once the job is stored: (network, direction).
pub type Counted = (String, &'static str);

enum Job {
    /// Message rows and the stanzas telling XMPP about them. When the first row was
    /// already stored (a duplicate delivery) nothing is sent.
    Record {
        rows: Vec<MessageRow>,
        items: Vec<Outgoing>,
        counted: Option<Counted>,
        /// Rows of a message an XMPP user sent, which the network took: if the network's
        /// id was stored before (a network that reused an id), the stanzas still go out
        /// (the sender must hear back) and a warning is logged.
        own: bool,
    },
    Send(Vec<Outgoing>),
    /// Answered once everything queued before it is stored and handed to the link.
    Flush(oneshot::Sender<()>),
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the component link is shut down")]
    Closed,
}

/// The sending side of one link, used by the dispatcher and the portals.
#[derive(Clone)]
pub struct LinkSender {
    jobs: mpsc::Sender<Job>,
}

impl LinkSender {
    /// Queue stanzas, in order after everything queued before.
    pub async fn send(&self, items: Vec<Outgoing>) -> Result<(), SendError> {
        self.jobs
            .send(Job::Send(items))
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Queue message rows with the stanzas about them: stored together, then sent.
    pub async fn send_recorded(
        &self,
        rows: Vec<MessageRow>,
        items: Vec<Outgoing>,
        counted: Option<Counted>,
    ) -> Result<(), SendError> {
        self.jobs
            .send(Job::Record {
                rows,
                items,
                counted,
                own: false,
            })
            .await
            .map_err(|_| SendError::Closed)
    }

    /// `send_recorded` for a message an XMPP user sent: its stanzas go out even when the
    /// network's id for it was stored before.
    pub async fn send_recorded_own(
        &self,
        rows: Vec<MessageRow>,
        items: Vec<Outgoing>,
    ) -> Result<(), SendError> {
        self.jobs
            .send(Job::Record {
                rows,
                items,
                counted: None,
                own: true,
            })
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Wait until everything queued so far is stored (e.g. before reading history).
    pub async fn flush(&self) -> Result<(), SendError> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job::Flush(done))
            .await
            .map_err(|_| SendError::Closed)?;
        wait.await.map_err(|_| SendError::Closed)
    }
}

pub struct Recorder {
    domain: Arc<str>,
    store: Store,
    metrics: Arc<Metrics>,
    jobs: mpsc::Receiver<Job>,
    link: mpsc::Sender<Queued>,
}

pub fn recorder(
    domain: Arc<str>,
    store: Store,
    metrics: Arc<Metrics>,
    link: mpsc::Sender<Queued>,
) -> (LinkSender, Recorder) {
    let (tx, jobs) = mpsc::channel(1024);
    (
        LinkSender { jobs: tx },
        Recorder {
            domain,
            store,
            metrics,
            jobs,
            link,
        },
    )
}

/// A stanza as the link writes it (and, if durable, as the outbox keeps it).
struct Rendered {
    text: String,
    durable: bool,
}

fn rendered(items: Vec<Outgoing>) -> Vec<Rendered> {
    items
        .into_iter()
        .map(|o| Rendered {
            durable: o.durable,
            text: o.into_text(),
        })
        .collect()
}

impl Recorder {
    /// Until shutdown; what is queued then is still stored and handed on.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let first = tokio::select! {
                j = self.jobs.recv() => j,
                _ = shutdown.cancelled() => self.jobs.try_recv().ok(),
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            let started = std::time::Instant::now();
            let mut grew = true;
            while batch.len() < GROUP {
                match self.jobs.try_recv() {
                    Ok(j) => {
                        batch.push(j);
                        grew = true;
                    }
                    // Give the other tasks a turn (and the runtime a look at the sockets)
                    // while that brings more jobs: under load one commit then carries many
                    // messages; when idle the first turn brings nothing and the commit
                    // starts at once.
                    Err(_) if grew && started.elapsed() < LINGER => {
                        grew = false;
                        tokio::task::yield_now().await;
                    }
                    Err(_) => break,
                }
            }
            if self.commit(batch, &shutdown).await.is_err() {
                return; // the link is gone: shutting down
            }
        }
    }

    async fn commit(
        &mut self,
        mut batch: Vec<Job>,
        shutdown: &CancellationToken,
    ) -> Result<(), SendError> {
        // Each stanza serialized once: this text is stored and written.
        let texts: Vec<Vec<Rendered>> = batch
            .iter_mut()
            .map(|j| match j {
                Job::Record { items, .. } | Job::Send(items) => rendered(std::mem::take(items)),
                Job::Flush(_) => Vec::new(),
            })
            .collect();
        let stanzas: Vec<Vec<&str>> = texts
            .iter()
            .map(|t| {
                t.iter()
                    .filter(|r| r.durable)
                    .map(|r| r.text.as_str())
                    .collect()
            })
            .collect();
        let records: Vec<Record<'_, &str>> = batch
            .iter()
            .zip(&stanzas)
            .map(|(j, s)| match j {
                Job::Record { rows, .. } => Record { rows, stanzas: s },
                _ => Record {
                    rows: &[],
                    stanzas: s,
                },
            })
            .collect();
        // A failed commit is tried again (the store may be back in a moment: a locked file,
        // a restarting PostgreSQL), never dropped: meanwhile the queue fills and the portals
        // and streams behind it wait. Only at shutdown is it given up; the messages it held
        // were not stored, so the rooms' cursors stay before them and catch-up brings them
        // again at the next start.
        let mut pause = std::time::Duration::from_millis(100);
        let stored = loop {
            match self.store.record_batch(&self.domain, &records).await {
                Ok(r) => break Ok(r),
                Err(e) if shutdown.is_cancelled() => break Err(e),
                Err(e) => {
                    tracing::warn!(domain = %self.domain, jobs = batch.len(), "not stored yet, trying again in {pause:?}: {e}");
                    self.metrics.inc("causeway_store_retries_total", &[]);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
            }
        };
        drop(records);
        drop(stanzas);
        let (seq, kept) = match stored {
            Ok(r) => (r.seq, r.kept.into_iter().map(Ok).collect()),
            Err(e) => {
                tracing::error!(domain = %self.domain, jobs = batch.len(), "not stored, not delivered: {e}");
                self.metrics.add(
                    "causeway_errors_total",
                    &[("kind", "store")],
                    batch.len() as u64,
                );
                (None, batch.iter().map(|_| Err(())).collect::<Vec<_>>())
            }
        };
        // Durable stanzas going out, all in the outbox row `seq`.
        let total: usize = texts
            .iter()
            .zip(&kept)
            .filter(|(_, k)| matches!(k, Ok(true)))
            .map(|(t, _)| t.iter().filter(|r| r.durable).count())
            .sum();
        // (durable stanzas of the row still to hand on, of how many)
        let mut left = (total, total);
        for ((job, kept), texts) in batch.into_iter().zip(kept).zip(texts) {
            match (job, kept) {
                (Job::Flush(done), _) => {
                    let _ = done.send(());
                }
                (Job::Record { counted, .. }, Ok(true)) => {
                    self.hand_on(texts, seq, &mut left).await?;
                    if let Some((network, direction)) = counted {
                        self.metrics.inc(
                            "causeway_messages_bridged_total",
                            &[("network", &network), ("direction", direction)],
                        );
                    }
                }
                (Job::Send(_), Ok(true)) => self.hand_on(texts, seq, &mut left).await?,
                // A network that gave an XMPP user's message an id it used before: what it
                // means to the sender still goes out, without a place in the outbox.
                (Job::Record { own: true, .. }, Ok(false)) => {
                    tracing::warn!(domain = %self.domain, "the network gave a sent message an id it had used before; the message is not archived again");
                    let texts = texts
                        .into_iter()
                        .map(|r| Rendered {
                            durable: false,
                            ..r
                        })
                        .collect();
                    self.hand_on(texts, None, &mut left).await?;
                }
                // A duplicate delivery: stored before, already told.
                (_, Ok(false)) => {}
                // Not stored: only what needs no storing goes out.
                (Job::Send(_) | Job::Record { .. }, Err(())) => {
                    let transient = texts.into_iter().filter(|r| !r.durable).collect();
                    self.hand_on(transient, None, &mut left).await?;
                }
            }
        }
        Ok(())
    }

    /// Hand stanzas to the link; durable ones carry the outbox row that holds them and
    /// their place in it. `left` counts the durable stanzas of the row still to hand on, of
    /// how many: the last one closes it.
    async fn hand_on(
        &self,
        texts: Vec<Rendered>,
        seq: Option<i64>,
        left: &mut (usize, usize),
    ) -> Result<(), SendError> {
        for o in texts {
            let (seq, closes, nth) = match seq {
                Some(s) if o.durable => {
                    left.0 = left.0.saturating_sub(1);
                    let nth = i64::try_from(left.1 - left.0).unwrap_or(i64::MAX);
                    (Some(s), left.0 == 0, nth)
                }
                _ => (None, false, 0),
            };
            self.link
                .send(Queued {
                    seq,
                    nth,
                    closes,
                    text: o.text,
                })
                .await
                .map_err(|_| SendError::Closed)?;
        }
        Ok(())
    }
}
