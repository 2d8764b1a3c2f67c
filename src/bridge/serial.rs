//! Work that waits on a network, kept off the XMPP stream: jobs run in tasks of their own,
//! one at a time per key (a user's registration steps, the events of a room being looked up
//! on the network) and in the order given, different keys in parallel. Bounded: at most
//! `workers` keys busy at once and `depth` jobs waiting per key; past that, `run` says so and
//! the caller refuses the request (an error to the sender, never a stalled stream).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Semaphore};

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Serial {
    queues: Mutex<HashMap<String, mpsc::Sender<Job>>>,
    workers: Arc<Semaphore>,
    depth: usize,
}

/// Too much is waiting already.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Serial {
    pub fn new(workers: usize, depth: usize) -> Arc<Serial> {
        Arc::new(Serial {
            queues: Mutex::default(),
            workers: Arc::new(Semaphore::new(workers.max(1))),
            depth: depth.max(1),
        })
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Job>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether jobs of this key are waiting or running (later work of the key must go
    /// through `run` too, to keep its order).
    pub fn busy(&self, key: &str) -> bool {
        self.queues().contains_key(key)
    }

    /// Run `job` after the jobs of `key` given before it.
    pub fn run(
        self: &Arc<Self>,
        key: &str,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Busy> {
        let job: Job = Box::pin(job);
        let mut queues = self.queues();
        if let Some(tx) = queues.get(key) {
            // (a worker removes its key under this lock once its queue is empty, so a
            // sender found here has a worker behind it)
            return tx.try_send(job).map_err(|_| Busy);
        }
        let permit = self.workers.clone().try_acquire_owned().map_err(|_| Busy)?;
        let (tx, mut rx) = mpsc::channel(self.depth);
        tx.try_send(job).map_err(|_| Busy)?;
        queues.insert(key.to_string(), tx);
        drop(queues);
        let (me, key) = (self.clone(), key.to_string());
        tokio::spawn(async move {
            let _permit = permit;
            loop {
                let job = match rx.try_recv() {
                    Ok(job) => job,
                    Err(_) => {
                        let mut queues = me.queues();
                        match rx.try_recv() {
                            Ok(job) => job,
                            Err(_) => {
                                queues.remove(&key);
                                return;
                            }
                        }
                    }
                };
                job.await;
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn keys_run_in_order_apart_from_each_other_and_bounded() {
        let serial = Serial::new(2, 3);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gate = Arc::new(tokio::sync::Notify::new());
        // key "slow" hangs until the gate opens; key "fast" goes on meanwhile
        for i in 0..3 {
            let (tx, gate) = (tx.clone(), gate.clone());
            serial
                .run("slow", async move {
                    if i == 0 {
                        gate.notified().await;
                    }
                    let _ = tx.send(format!("slow{i}"));
                })
                .expect("queued");
        }
        assert_eq!(serial.run("slow", async {}), Err(Busy), "depth 3");
        for i in 0..3 {
            let tx = tx.clone();
            serial
                .run("fast", async move {
                    let _ = tx.send(format!("fast{i}"));
                })
                .expect("queued");
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(rx.recv().await.expect("fast"));
        }
        assert_eq!(got, ["fast0", "fast1", "fast2"]);
        // two workers busy at most: "slow" still holds one; "fast" is done
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!serial.busy("fast") && serial.busy("slow"));
        serial.run("other", async {}).expect("a second worker");
        gate.notify_one();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(rx.recv().await.expect("slow"));
        }
        assert_eq!(got, ["slow0", "slow1", "slow2"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!serial.busy("slow"), "an idle key is forgotten");
    }
}
