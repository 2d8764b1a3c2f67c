//! A session Discord will not resume (Invalid Session with `d: false`, a RESUME refused that
//! way, close code 4009) is followed by a new one that gets nothing from before: the adapter
//! hands the core a Gap before any event of the new session, and history has what was posted
//! in between, in order. A resumed session is no gap: Discord replays what it missed.

use causeway_api::{
    Envelope, EventSink, LoginId, Network, RemoteEvent, RemoteEventKind, RemoteMessageId, RoomKey,
    Session,
};
use causeway_discord::{DiscordConfig, DiscordNetwork};
use fake_discord::{FakeDiscord, Options, Post};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

struct World {
    fake: FakeDiscord,
    channel: String,
    ann: String,
    session: Arc<dyn Session>,
    events: mpsc::Receiver<Envelope>,
}

/// A guild with a channel and a member, and the relay session connected to it.
async fn world() -> World {
    let fake = FakeDiscord::start(Options::default()).await.expect("fake");
    let g = fake.add_guild("G");
    let channel = fake.add_channel(&g, "general", 0, None);
    let ann = fake.add_user("ann", Some("Ann"));
    fake.add_member(&g, &ann, None);
    let net = DiscordNetwork::new(DiscordConfig {
        token: Some(causeway_api::Secret::new(fake.token())),
        api_url: fake.api_url(),
        cdn_url: fake.cdn_url(),
        ..DiscordConfig::default()
    })
    .expect("config");
    let login = net.relay_login().expect("relay login");
    let (tx, events) = mpsc::channel(4096);
    let session = net
        .connect(&login, EventSink::new(LoginId::new("t"), tx))
        .await
        .expect("connect");
    World {
        fake,
        channel,
        ann,
        session,
        events,
    }
}

impl World {
    fn room(&self) -> RoomKey {
        RoomKey::shared(self.channel.clone())
    }

    fn post(&self, text: &str) -> String {
        self.fake.post(&self.channel, &self.ann, Post::text(text))
    }

    /// The next event that is not a change of login state (the gateway reconnecting).
    async fn next(&mut self) -> RemoteEvent {
        loop {
            let env = tokio::time::timeout(Duration::from_secs(20), self.events.recv())
                .await
                .expect("an event within 20 s")
                .expect("the sink is open");
            if !matches!(env.event.kind, RemoteEventKind::LoginState { .. }) {
                return env.event;
            }
        }
    }

    /// The next event, which must be the live message `id` with `text`.
    async fn expect_message(&mut self, id: &str, text: &str) {
        let e = self.next().await;
        assert_eq!(message(&e), Some((id, text)), "{e:?}");
    }

    /// Events handed over within `wait`, login states left out.
    async fn drain(&mut self, wait: Duration) -> Vec<RemoteEvent> {
        let mut out = Vec::new();
        let end = tokio::time::Instant::now() + wait;
        while let Ok(Some(env)) = tokio::time::timeout_at(end, self.events.recv()).await {
            if !matches!(env.event.kind, RemoteEventKind::LoginState { .. }) {
                out.push(env.event);
            }
        }
        out
    }
}

/// (id, text) of a message event.
fn message(e: &RemoteEvent) -> Option<(&str, &str)> {
    match &e.kind {
        RemoteEventKind::Message { id, content, .. } => Some((id.as_str(), content.text.as_str())),
        _ => None,
    }
}

/// How a test ends the bot's session so that it cannot be resumed.
#[derive(Clone, Copy, Debug)]
enum Loss {
    /// op 9 Invalid Session with `d: false` on the live connection; IDENTIFYs held a while.
    Invalidated,
    /// The connection drops, then the session is invalidated: the RESUME is refused (op 9).
    ResumeRefused,
    /// Close code 4009, session timed out.
    Expired,
}

/// Messages posted while the bot has no session reach it only through history, after a Gap
/// that comes before anything of the new session.
async fn a_lost_session_is_a_gap(loss: Loss) {
    let mut w = world().await;
    let last = w.post("before");
    w.expect_message(&last, "before").await;

    let ended = match loss {
        Loss::Invalidated => w.fake.invalidate_and_hold(Duration::from_millis(500)),
        Loss::ResumeRefused => {
            w.fake.drop_gateway();
            w.fake.invalidate_session()
        }
        Loss::Expired => w.fake.expire_session(),
    };
    assert_eq!((ended, w.fake.sessions()), (1, 0), "{loss:?}");
    let missed: Vec<(String, String)> = (0..5)
        .map(|i| {
            let text = format!("missed {i}");
            (w.post(&text), text)
        })
        .collect();

    // the first event after the loss is the Gap: the missed messages never come live
    let gap = w.next().await;
    assert!(
        matches!(gap.kind, RemoteEventKind::Gap),
        "{loss:?}: {gap:?}"
    );
    let (identifies, resumes) = w.fake.gateway_counts();
    assert_eq!(identifies, 2, "{loss:?}: a new session");
    if matches!(loss, Loss::ResumeRefused) {
        assert!(resumes >= 1, "a RESUME was tried first");
    }
    // the Gap comes once the new session exists: what follows is dispatched to it
    assert_eq!(w.fake.sessions(), 1);

    // history from the last message seen has exactly those posted in between, in order
    let after = RemoteMessageId::new(last.clone());
    let got = w
        .session
        .history(&w.room(), Some(&after), 100)
        .await
        .expect("history");
    let got: Vec<(String, String)> = got
        .iter()
        .filter_map(message)
        .map(|(id, text)| (id.to_string(), text.to_string()))
        .collect();
    assert_eq!(got, missed, "{loss:?}");
    // and page by page (what the core does with a small limit)
    let mut paged = Vec::new();
    let mut cursor = after;
    loop {
        let page = w
            .session
            .history(&w.room(), Some(&cursor), 2)
            .await
            .expect("history page");
        let Some(end) = page.last().and_then(message) else {
            break;
        };
        cursor = RemoteMessageId::new(end.0);
        paged.extend(
            page.iter()
                .filter_map(message)
                .map(|(id, _)| id.to_string()),
        );
    }
    let want: Vec<String> = missed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(paged, want, "{loss:?}");

    // the new session is live
    let now = w.post("after");
    w.expect_message(&now, "after").await;
    let more = w.drain(Duration::from_millis(300)).await;
    assert!(more.is_empty(), "{loss:?}: {more:?}");
    w.session.disconnect().await;
}

#[tokio::test]
async fn an_invalidated_session_is_a_gap() {
    a_lost_session_is_a_gap(Loss::Invalidated).await;
}

#[tokio::test]
async fn a_refused_resume_is_a_gap() {
    a_lost_session_is_a_gap(Loss::ResumeRefused).await;
}

#[tokio::test]
async fn an_expired_session_is_a_gap() {
    a_lost_session_is_a_gap(Loss::Expired).await;
}

#[tokio::test]
async fn a_resumed_session_is_no_gap() {
    let mut w = world().await;
    let first = w.post("before");
    w.expect_message(&first, "before").await;
    w.fake.drop_gateway();
    // posted while the connection is down: replayed on RESUME
    let during = w.post("during");
    let start = std::time::Instant::now();
    while w.fake.gateway_counts().1 == 0 || w.fake.connected() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no RESUME: {:?}",
            w.fake.gateway_counts()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = w.post("after");
    w.expect_message(&during, "during").await;
    w.expect_message(&now, "after").await;
    let more = w.drain(Duration::from_millis(300)).await;
    assert!(more.is_empty(), "{more:?}");
    assert_eq!(
        w.fake.gateway_counts().0,
        1,
        "resumed, not identified again"
    );
    w.session.disconnect().await;
}
