//! One XEP-0114 stream per component domain: connect, handshake, reconnect with backoff and
//! jitter, find a dead link with XEP-0199 pings, and a durable outbox acknowledged by pings.
//!
//! Outbox rule: a durable stanza is stored before it is written; it leaves the store only
//! once the server answered a ping written after it (the server handles a stream in order).
//! After a reconnect every unacknowledged stanza is written again, with its original id.

use super::ns;
use super::recorder::{LinkSender, Recorder};
use super::render::parse_stanzas;
use super::wire::Wire;
use super::Attrs;
use crate::metrics::Metrics;
use crate::store::Store;
use causeway_api::Secret;
use futures::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::component::Handshake;
use tokio_xmpp::xmlstream::{self, ReadError, StreamHeader, Timeouts, XmlStream};

/// Read as plain elements: stanzas are classified by `inbound.rs`, never parsed into typed
/// stanzas and converted back. Stanzas go out as the text they were rendered to once
/// (render.rs), through the socket's queue (wire.rs).
type Stream = XmlStream<Wire, Element>;

const STREAMS_NS: &str = "http://etherx.jabber.org/streams";

const ACK_PREFIX: &str = "cw-ack-";
const BATCH: usize = 256;
/// How long written stanzas wait for their acknowledging ping (a crash re-sends at most
/// this much traffic twice; the messages themselves are never delayed by it).
const ACK_DELAY: Duration = Duration::from_millis(25);
/// Durable stanzas written and not yet acknowledged, at most: what a crash of Causeway may
/// make the server deliver twice (it re-sends them from the outbox), plus the
/// acknowledgements answered but not yet stored by the acker (measured: none, under a
/// burst, with a ping every 8). Past it the writer waits for an answer to a ping. (Opening
/// the window only once the acker stored the answers made it strict, but cost a quarter of
/// the throughput on Prosody: the acker waits for the store's one writer.)
const WINDOW: usize = 32;
/// The longest the writer waits for the window to open (see `serve`).
const WINDOW_WAIT: Duration = Duration::from_secs(1);
/// Under load an acknowledging ping follows every this many durable stanzas (several in
/// flight), so that answers keep coming while the window is full.
const PING_EVERY: usize = 8;

#[derive(Clone, Debug)]
pub struct LinkConfig {
    pub domain: String,
    pub secret: Secret,
    pub server: String,
    pub server_domain: String,
    pub ping_interval: Duration,
}

/// A stanza queued for the stream, as text; `seq` is its outbox row when durable (a row
/// holds the stanzas of one group commit, queued one after the other; `closes` marks the
/// last).
#[derive(Debug)]
pub(crate) struct Queued {
    pub seq: Option<i64>,
    /// Its place among its row's durable stanzas (1 for the first).
    pub nth: i64,
    pub closes: bool,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("cannot reach the XMPP server at {0}: {1}")]
    Unreachable(String, std::io::Error),
    #[error("the server refused the component handshake for {domain}: {condition}{hint}")]
    Refused {
        domain: String,
        condition: String,
        hint: &'static str,
    },
    #[error("stream failed during the handshake: {0}")]
    Handshake(String),
}

fn hint(condition: &str) -> &'static str {
    match condition {
        "not-authorized" => " (wrong component secret)",
        "conflict" => {
            " (another connection holds this domain; Prosody keeps the old one until it times out)"
        }
        "host-unknown" | "improper-addressing" => " (the server has no component for this domain)",
        _ => "",
    }
}

async fn connect(cfg: &LinkConfig) -> Result<Stream, LinkError> {
    let unreachable = |e| LinkError::Unreachable(cfg.server.clone(), e);
    let tcp = TcpStream::connect(cfg.server.as_str())
        .await
        .map_err(unreachable)?;
    tcp.set_nodelay(true).map_err(unreachable)?;
    let timeouts = Timeouts {
        read_timeout: cfg.ping_interval * 3,
        response_timeout: cfg.ping_interval,
    };
    let header = StreamHeader {
        from: None,
        to: Some(cfg.domain.clone().into()),
        id: None,
    };
    let mut pending = xmlstream::initiate_stream(
        Wire::new(tcp),
        tokio_xmpp::parsers::ns::COMPONENT,
        header,
        timeouts,
    )
    .await
    .map_err(|e| LinkError::Handshake(e.to_string()))?;
    let stream_id = pending
        .take_header()
        .id
        .ok_or_else(|| LinkError::Handshake("the server sent no stream id".into()))?
        .into_owned();
    let mut stream: Stream = pending.skip_features();
    let handshake = Handshake::from_stream_id_and_password(stream_id, cfg.secret.expose());
    stream
        .send(&handshake)
        .await
        .map_err(|e| LinkError::Handshake(e.to_string()))?;
    loop {
        match stream.next().await {
            Some(Ok(el)) if el.name() == "handshake" => return Ok(stream),
            Some(Ok(el)) => {
                let Some(condition) = stream_error(&el) else {
                    return Err(LinkError::Handshake(format!("unexpected <{}/>", el.name())));
                };
                return Err(LinkError::Refused {
                    domain: cfg.domain.clone(),
                    hint: hint(&condition),
                    condition,
                });
            }
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(LinkError::Refused {
                    domain: cfg.domain.clone(),
                    condition: "stream closed".into(),
                    hint: " (wrong secret or unknown domain?)",
                })
            }
            Some(Err(e)) => return Err(LinkError::Handshake(format!("{e:?}"))),
        }
    }
}

/// The condition of a `<stream:error/>` ("not-authorized"), or None for any other element.
fn stream_error(el: &Element) -> Option<String> {
    if el.name() != "error" || el.ns() != STREAMS_NS {
        return None;
    }
    let condition = el
        .children()
        .find(|c| c.name() != "text")
        .map(|c| c.name().to_string());
    Some(condition.unwrap_or_else(|| "undefined-condition".into()))
}

/// Backoff for attempt `n` (0-based): 0.5 s doubling to 30 s, with +-25 % jitter.
pub fn backoff(n: u32) -> Duration {
    let base = 0.5 * 2f64.powi(n.min(6) as i32);
    let capped = base.min(30.0);
    let jitter = 0.75 + rand::random::<f64>() * 0.5;
    Duration::from_secs_f64(capped * jitter)
}

pub struct Link {
    cfg: LinkConfig,
    store: Store,
    metrics: Arc<Metrics>,
    rx: mpsc::Receiver<Queued>,
    inbound: mpsc::Sender<(Arc<str>, Element)>,
}

pub fn link(
    cfg: LinkConfig,
    store: Store,
    metrics: Arc<Metrics>,
    inbound: mpsc::Sender<(Arc<str>, Element)>,
) -> (Link, LinkSender, Recorder) {
    let (tx, rx) = mpsc::channel(1024);
    let (sender, recorder) = super::recorder::recorder(
        cfg.domain.as_str().into(),
        store.clone(),
        metrics.clone(),
        tx,
    );
    (
        Link {
            cfg,
            store,
            metrics,
            rx,
            inbound,
        },
        sender,
        recorder,
    )
}

enum Ended {
    Shutdown,
    Lost(String),
}

impl Link {
    /// Connect, run, reconnect, until shutdown.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let (acks, rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acker(self.store.clone(), self.cfg.domain.clone(), rx));
        self.connect_loop(&acks, &shutdown).await;
        // Let the acknowledgements already received reach the store before stopping, so
        // they are not re-sent at the next start.
        drop(acks);
        let _ = acker.await;
    }

    async fn connect_loop(&mut self, acks: &Acks, shutdown: &CancellationToken) {
        let domain = self.cfg.domain.clone();
        let mut attempt = 0u32;
        loop {
            let connected = {
                let connecting = connect(&self.cfg);
                tokio::pin!(connecting);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        r = &mut connecting => break r,
                        Some(q) = self.rx.recv() => drop_offline(q),
                    }
                }
            };
            match connected {
                Ok(stream) => {
                    attempt = 0;
                    tracing::info!(domain = %domain, server = %self.cfg.server, "component connected");
                    self.metrics.set_connected(&domain, true);
                    let ended = self.serve(stream, shutdown, acks).await;
                    self.metrics.set_connected(&domain, false);
                    match ended {
                        Ended::Shutdown => return,
                        Ended::Lost(why) => {
                            self.metrics
                                .inc("causeway_reconnects_total", &[("domain", &domain)]);
                            tracing::warn!(domain = %domain, reason = %why, "component link lost; reconnecting");
                        }
                    }
                }
                Err(e) => {
                    let wait = backoff(attempt);
                    tracing::error!(domain = %domain, retry_in_ms = wait.as_millis() as u64, "{e}");
                    attempt = attempt.saturating_add(1);
                    if !self.offline_wait(wait, shutdown).await {
                        return;
                    }
                    continue;
                }
            }
            // A lost link also waits a moment, so a flapping server is not hammered.
            if !self.offline_wait(backoff(0), shutdown).await {
                return;
            }
        }
    }

    /// Wait while offline, draining the queue so that senders never block on a dead link;
    /// false on shutdown.
    async fn offline_wait(&mut self, wait: Duration, shutdown: &CancellationToken) -> bool {
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = &mut sleep => return true,
                Some(q) = self.rx.recv() => drop_offline(q),
            }
        }
    }

    async fn serve(
        &mut self,
        mut stream: Stream,
        shutdown: &CancellationToken,
        acker: &Acks,
    ) -> Ended {
        let domain: Arc<str> = self.cfg.domain.as_str().into();
        let mut acks = AckBook::default();
        // Outbox rows up to this one were re-sent from the store: their stanzas still queued
        // are not written again.
        let mut replayed: Option<i64> = None;

        // Acknowledgements of the last connection must be in the store before the replay.
        let (done, flushed) = tokio::sync::oneshot::channel();
        if acker.send(AckJob::Flush(done)).is_ok() {
            let _ = flushed.await;
        }

        // Replay what the server never acknowledged, in order, before anything new.
        let pending = match self.store.outbox_pending(&domain).await {
            Ok(p) => p,
            Err(e) => return Ended::Lost(format!("cannot read the outbox: {e}")),
        };
        if !pending.is_empty() {
            tracing::info!(domain = %domain, count = pending.len(), "re-sending unacknowledged stanzas");
        }
        let raw = stream.get_stream().raw();
        let mut written = Vec::new();
        for entry in pending {
            match parse_stanzas(&entry.stanzas) {
                // Written as stored (the ping below flushes it).
                Some(_) if entry.acked <= 0 => raw.push(&entry.stanzas),
                // Its first stanzas were acknowledged before: not delivered twice.
                Some(all) => {
                    let skip = usize::try_from(entry.acked).unwrap_or(usize::MAX);
                    for el in all.iter().skip(skip) {
                        raw.push(&super::render::render(el));
                    }
                }
                None => {
                    tracing::error!(domain = %domain, seq = entry.seq, "dropping an outbox entry that does not parse")
                }
            }
            written.push(entry.seq);
            replayed = Some(entry.seq);
        }
        if let Err(e) = send_ping(
            &mut stream,
            &mut acks,
            &domain,
            &self.cfg.server_domain,
            written,
        )
        .await
        {
            return e;
        }

        // Written, not yet covered by a ping.
        let mut unpinged: Vec<i64> = Vec::new();
        let mut ack_due: Option<Instant> = None;
        // Since when the window is full (None: open).
        let mut full_since: Option<Instant> = None;
        let mut ticker = tokio::time::interval_at(
            Instant::now() + self.cfg.ping_interval,
            self.cfg.ping_interval,
        );
        let inbound = self.inbound.clone();
        loop {
            if acks.open() {
                full_since = None;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = SinkExt::<&Element>::close(&mut stream).await;
                    return Ended::Shutdown;
                }
                // Read only when the dispatcher can take the stanza: the writer below never
                // waits on the dispatcher, so the two cannot block each other.
                (permit, item) = async { (inbound.reserve().await, stream.next().await) } => {
                    let Ok(permit) = permit else { return Ended::Shutdown };
                    match on_read(item, &domain, &self.cfg.server_domain) {
                        Read::Deliver(inb) => permit.send((domain.clone(), inb)),
                        Read::Ack(id) => {
                            let (seqs, part) = acks.answered_with_part(&id);
                            if !seqs.is_empty() {
                                // Off the stream's path: the writer never waits for the store.
                                let _ = acker.send(AckJob::Ack(seqs));
                            }
                            if let Some((seq, n)) = part {
                                let _ = acker.send(AckJob::Part(seq, n));
                            }
                        }
                        Read::Nothing => {}
                        Read::Lost(why) => return Ended::Lost(why),
                    }
                }
                // The window is full: after WINDOW_WAIT the writer goes on all the same. The
                // answer that would open it may wait behind stanzas the dispatcher cannot
                // take while the portals wait for this writer: never a deadlock.
                _ = tokio::time::sleep_until(full_since.map_or_else(Instant::now, |t| t + WINDOW_WAIT)), if !acks.open() && full_since.is_none_or(|t| t.elapsed() < WINDOW_WAIT) => {
                    if full_since.is_none() {
                        full_since = Some(Instant::now());
                    }
                }
                item = self.rx.recv(), if acks.open() || full_since.is_some_and(|t| t.elapsed() >= WINDOW_WAIT) => {
                    let Some(first) = item else { return Ended::Shutdown };
                    let mut written = Vec::new();
                    let mut next = Some(first);
                    let mut n = 0;
                    let mut lingered = false;
                    while let Some(q) = next.take() {
                        n += 1;
                        if let Some(seq) = q.seq.filter(|s| replayed.is_none_or(|r| *s > r)) {
                            acks.written_of(seq, q.nth, q.closes);
                        }
                        if n < BATCH && acks.open() {
                            next = self.rx.try_recv().ok();
                            // Give tasks that are about to queue more a turn, so that one
                            // write carries them too (fewer, larger reads for the server).
                            if next.is_none() && !lingered {
                                lingered = true;
                                tokio::task::yield_now().await;
                                next = self.rx.try_recv().ok();
                            }
                        }
                        if let Some(seq) = q.seq {
                            if replayed.is_some_and(|r| seq <= r) {
                                continue; // already re-sent from the outbox
                            }
                            // A ping may acknowledge the row once all its stanzas are written.
                            if q.closes {
                                written.push(seq);
                            }
                        }
                        // Written as rendered (and stored): serialized once.
                        raw.push(&q.text);
                    }
                    if !written.is_empty() && ack_due.is_none() {
                        ack_due = Some(Instant::now() + ACK_DELAY);
                    }
                    unpinged.extend(written);
                    // Under load: a ping now, even with others in flight, so that the
                    // window opens again as the server works through what was written.
                    if acks.unpinged >= PING_EVERY {
                        ack_due = None;
                        if let Err(e) = send_ping(&mut stream, &mut acks, &domain, &self.cfg.server_domain, std::mem::take(&mut unpinged)).await {
                            return e;
                        }
                    }
                    if let Err(e) = SinkExt::<&Element>::flush(&mut stream).await {
                        return Ended::Lost(e.to_string());
                    }
                }
                // The acknowledging ping: one in flight at a time, sent a moment after the
                // first unacknowledged write, so that one ping covers many stanzas and the
                // server answers far fewer pings than it relays messages.
                _ = tokio::time::sleep_until(ack_due.unwrap_or_else(Instant::now)), if ack_due.is_some() && acks.idle() => {
                    ack_due = None;
                    if let Err(e) = send_ping(&mut stream, &mut acks, &domain, &self.cfg.server_domain, std::mem::take(&mut unpinged)).await {
                        return e;
                    }
                }
                _ = ticker.tick() => {
                    if let Some(since) = acks.oldest_unanswered() {
                        if since.elapsed() >= self.cfg.ping_interval {
                            return Ended::Lost(format!("no answer to a ping for {:?}", since.elapsed()));
                        }
                    } else {
                        ack_due = None;
                        if let Err(e) = send_ping(&mut stream, &mut acks, &domain, &self.cfg.server_domain, std::mem::take(&mut unpinged)).await {
                            return e;
                        }
                    }
                }
            }
        }
    }
}

/// A stanza queued while the link is down: durable ones are in the outbox and are replayed
/// on reconnect; the rest (presences, IQ answers) has no meaning for a later stream.
fn drop_offline(q: Queued) {
    if q.seq.is_none() {
        tracing::debug!("link down: dropping a transient stanza");
    }
}

enum AckJob {
    /// These outbox rows were acknowledged by the server.
    Ack(Vec<i64>),
    /// The first stanzas of a row still being written were: (seq, how many).
    Part(i64, i64),
    /// Answer once every earlier job is done.
    Flush(tokio::sync::oneshot::Sender<()>),
}

type Acks = mpsc::UnboundedSender<AckJob>;

/// Deletes acknowledged outbox rows, coalescing whatever has piled up into one statement.
async fn acker(store: Store, domain: String, mut rx: mpsc::UnboundedReceiver<AckJob>) {
    while let Some(job) = rx.recv().await {
        let mut seqs = Vec::new();
        let mut waiting = Vec::new();
        let mut next = Some(job);
        let mut part = None;
        while let Some(job) = next.take() {
            match job {
                AckJob::Ack(s) => seqs.extend(s),
                AckJob::Part(seq, n) => part = Some((seq, n)),
                AckJob::Flush(done) => waiting.push(done),
            }
            next = rx.try_recv().ok();
        }
        if !seqs.is_empty() {
            if let Err(e) = store.outbox_ack(&domain, &seqs).await {
                tracing::warn!(domain = %domain, "outbox acknowledgement not stored (will re-send): {e}");
            }
        }
        if let Some((seq, n)) = part.filter(|(seq, _)| !seqs.contains(seq)) {
            if let Err(e) = store.outbox_ack_part(&domain, seq, n).await {
                tracing::warn!(domain = %domain, "outbox acknowledgement not stored (will re-send): {e}");
            }
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// Write an acknowledging (and liveness) ping covering `seqs`.
async fn send_ping(
    stream: &mut Stream,
    acks: &mut AckBook,
    from: &str,
    to: &str,
    seqs: Vec<i64>,
) -> Result<(), Ended> {
    let ping = acks.ping(from, to, seqs);
    stream
        .send(&ping)
        .await
        .map_err(|e| Ended::Lost(e.to_string()))
}

/// One acknowledging ping in flight.
struct Ping {
    id: String,
    sent: Instant,
    /// The outbox rows it completes.
    seqs: Vec<i64>,
    /// Durable stanzas it covers.
    covered: usize,
    /// The row being written when it was sent, and how many of its stanzas were written.
    part: Option<(i64, i64)>,
}

/// Pings in flight, the outbox rows each one acknowledges and how many durable stanzas.
#[derive(Default)]
struct AckBook {
    next: u64,
    inflight: VecDeque<Ping>,
    /// The row being written and how many of its stanzas are written.
    part: Option<(i64, i64)>,
    /// Durable stanzas written and not yet acknowledged (covered by a ping or not).
    outstanding: usize,
    /// Of those, written since the last ping.
    unpinged: usize,
}

impl AckBook {
    fn ping(&mut self, from: &str, to: &str, seqs: Vec<i64>) -> Element {
        self.next += 1;
        let id = format!("{ACK_PREFIX}{}", self.next);
        let covered = std::mem::take(&mut self.unpinged);
        self.inflight.push_back(Ping {
            id: id.clone(),
            sent: Instant::now(),
            seqs,
            covered,
            part: self.part,
        });
        Element::builder("iq", ns::STREAM)
            .at("type", "get")
            .at("id", id)
            .at("from", from)
            .at("to", to)
            .append(Element::builder("ping", ns::PING).build())
            .build()
    }

    /// The answer to `id` acknowledges it and every earlier ping.
    #[cfg(test)]
    fn answered(&mut self, id: &str) -> Vec<i64> {
        self.answered_with_part(id).0
    }

    /// The rows the answer to `id` completes, and the part of a row it acknowledges.
    fn answered_with_part(&mut self, id: &str) -> (Vec<i64>, Option<(i64, i64)>) {
        let Some(pos) = self.inflight.iter().position(|p| p.id == id) else {
            return (Vec::new(), None);
        };
        let mut seqs = Vec::new();
        let mut part = None;
        for p in self.inflight.drain(..=pos) {
            seqs.extend(p.seqs);
            self.outstanding = self.outstanding.saturating_sub(p.covered);
            part = p.part;
        }
        (seqs, part)
    }

    /// A durable stanza was written: the `nth` of row `seq`, closing it or not.
    fn written_of(&mut self, seq: i64, nth: i64, closes: bool) {
        self.written();
        self.part = (!closes).then_some((seq, nth));
    }

    /// A durable stanza was written.
    fn written(&mut self) {
        self.outstanding += 1;
        self.unpinged += 1;
    }

    /// Whether the writer may write more durable stanzas now.
    fn open(&self) -> bool {
        self.outstanding < WINDOW
    }

    fn idle(&self) -> bool {
        self.inflight.is_empty()
    }

    fn oldest_unanswered(&self) -> Option<Instant> {
        self.inflight.front().map(|p| p.sent)
    }
}

enum Read {
    Deliver(Element),
    Ack(String),
    Nothing,
    Lost(String),
}

fn on_read(item: Option<Result<Element, ReadError>>, domain: &str, server_domain: &str) -> Read {
    let Some(item) = item else {
        return Read::Lost("stream ended".into());
    };
    match item {
        Ok(el) => {
            if let Some(condition) = stream_error(&el) {
                return Read::Lost(format!("stream error from the server: {condition}"));
            }
            match ack_answer(&el, server_domain) {
                Some(id) => Read::Ack(id),
                None => Read::Deliver(el),
            }
        }
        Err(ReadError::SoftTimeout) => Read::Nothing,
        Err(ReadError::ParseError(e)) => {
            tracing::warn!(domain = %domain, "ignoring unparsable input: {e}");
            Read::Nothing
        }
        Err(ReadError::StreamFooterReceived) => Read::Lost("the server closed the stream".into()),
        Err(ReadError::HardError(e)) => Read::Lost(format!("read error: {e}")),
    }
}

/// The answer (result or error) to one of our acknowledging pings: its id.
fn ack_answer(el: &Element, server_domain: &str) -> Option<String> {
    let answer = el.name() == "iq" && matches!(el.attr("type"), Some("result" | "error"));
    let id = el.attr("id")?;
    let from_server = el.attr("from").is_none_or(|f| f == server_domain);
    (answer && id.starts_with(ACK_PREFIX) && from_server).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_with_jitter() {
        for (n, base) in [
            (0u32, 0.5f64),
            (1, 1.0),
            (2, 2.0),
            (5, 16.0),
            (6, 30.0),
            (40, 30.0),
        ] {
            for _ in 0..50 {
                let d = backoff(n).as_secs_f64();
                assert!(
                    d >= base * 0.75 - 1e-9 && d <= base * 1.25 + 1e-9,
                    "attempt {n}: {d}"
                );
            }
        }
    }

    #[test]
    fn a_ping_answer_acknowledges_it_and_all_before() {
        let mut book = AckBook::default();
        book.ping("gw", "srv", vec![1, 2]);
        book.ping("gw", "srv", vec![]);
        book.ping("gw", "srv", vec![3]);
        assert_eq!(book.answered("cw-ack-2"), vec![1, 2]);
        assert_eq!(book.answered("cw-ack-1"), Vec::<i64>::new());
        assert!(book.oldest_unanswered().is_some());
        assert_eq!(book.answered("cw-ack-3"), vec![3]);
        assert!(book.oldest_unanswered().is_none());
        assert!(book.idle());
    }

    /// At most WINDOW durable stanzas are written unacknowledged: a crash re-sends no more.
    #[test]
    fn the_window_closes_when_full_and_opens_with_answers() {
        let mut book = AckBook::default();
        let mut pings = Vec::new();
        while book.open() {
            book.written();
            if book.unpinged >= PING_EVERY {
                book.ping("gw", "srv", vec![]);
                pings.push(format!("{ACK_PREFIX}{}", book.next));
            }
        }
        assert_eq!(book.outstanding, WINDOW);
        assert_eq!(pings.len(), WINDOW / PING_EVERY);
        book.answered(&pings[0]);
        assert!(book.open());
        assert_eq!(book.outstanding, WINDOW - PING_EVERY);
        book.answered(&pings[pings.len() - 1]);
        assert_eq!(book.outstanding, 0);
    }

    #[test]
    fn outbox_rows_give_back_their_stanzas_in_order() {
        let m = |id: &str| {
            format!("<message xmlns='jabber:component:accept' id='{id}' to='a@b'><body>x &amp; y</body></message>")
        };
        let cases: [(String, Option<Vec<&str>>); 4] = [
            // a row from before batching: one stanza
            (m("1"), Some(vec!["1"])),
            ([m("1"), m("2"), m("3")].concat(), Some(vec!["1", "2", "3"])),
            ("<message id='u'/>".into(), Some(vec!["u"])),
            (format!("{}<message", m("1")), None),
        ];
        for (text, want) in cases {
            let got = parse_stanzas(&text).map(|v| {
                v.iter()
                    .map(|e| {
                        assert_eq!(e.ns(), ns::STREAM);
                        e.attr("id").unwrap_or("").to_string()
                    })
                    .collect::<Vec<_>>()
            });
            assert_eq!(
                got,
                want.map(|w| w.iter().map(|s| s.to_string()).collect()),
                "{text}"
            );
        }
    }

    #[test]
    fn stream_errors_and_ack_answers_are_recognised() {
        let el = |x: &str| x.parse::<Element>().expect("test xml");
        let err = el("<error xmlns='http://etherx.jabber.org/streams'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>x</text></error>");
        assert_eq!(stream_error(&err).as_deref(), Some("not-authorized"));
        assert_eq!(hint("not-authorized"), " (wrong component secret)");
        let msg = el("<message xmlns='jabber:component:accept' from='a@b' to='c'/>");
        assert_eq!(stream_error(&msg), None);
        let cases = [
            (
                "<iq xmlns='jabber:component:accept' type='result' id='cw-ack-3' from='srv'/>",
                Some("cw-ack-3"),
            ),
            (
                "<iq xmlns='jabber:component:accept' type='error' id='cw-ack-4'/>",
                Some("cw-ack-4"),
            ),
            // a client cannot acknowledge the outbox for the server
            (
                "<iq xmlns='jabber:component:accept' type='result' id='cw-ack-5' from='u@srv/r'/>",
                None,
            ),
            (
                "<iq xmlns='jabber:component:accept' type='get' id='cw-ack-6' from='srv'/>",
                None,
            ),
            (
                "<iq xmlns='jabber:component:accept' type='result' id='other' from='srv'/>",
                None,
            ),
        ];
        for (xml, want) in cases {
            assert_eq!(ack_answer(&el(xml), "srv").as_deref(), want, "{xml}");
        }
    }
}
