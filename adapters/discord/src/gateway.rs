//! The gateway connection, driven here rather than by serenity's shard runner (which hands
//! each event to its own task, so events of one channel could overtake each other). Events
//! leave in the order Discord numbered them. A dropped connection is RESUMEd (on
//! `resume_gateway_url`, from the last sequence number handled), never re-IDENTIFYed unless
//! Discord invalidates the session; heartbeats follow HELLO with the first one jittered;
//! a missing heartbeat ACK counts as a dead connection. Close codes that no retry can fix
//! (bad token 4004, disallowed intents 4014, ...) end the loop with a clear error.
//!
//! A session that cannot be resumed (Invalid Session with `d: false`, a RESUME refused that
//! way, close codes 4007/4009) is replaced by a new one, and Discord does not replay to it
//! what was dispatched in between: the new session's READY is preceded by [`Item::Gap`], so
//! that the rooms catch up from REST history before its first event.

use crate::rest::{Body, Rest};
use causeway_api::{NetworkError, Secret};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};
use serenity::model::event::{Event, GatewayEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

pub const GUILDS: u64 = 1 << 0;
pub const GUILD_MEMBERS: u64 = 1 << 1;
pub const GUILD_MESSAGES: u64 = 1 << 9;
pub const GUILD_MESSAGE_REACTIONS: u64 = 1 << 10;
pub const GUILD_MESSAGE_TYPING: u64 = 1 << 11;
pub const MESSAGE_CONTENT: u64 = 1 << 15;

/// What the gateway task reports, in order.
pub enum Item {
    Event(Box<Event>),
    /// READY or RESUMED: the connection is usable.
    Connected {
        resumed: bool,
    },
    Reconnecting(String),
    /// A new session follows one that could not be resumed: what Discord dispatched between
    /// the two is lost to the gateway. Sent once the new session is READY (so that it already
    /// gets every later dispatch: history read from then on misses nothing) and before any of
    /// its events.
    Gap,
    /// No retry will help; the loop has ended.
    Fatal(NetworkError),
}

struct SessionState {
    id: String,
    resume_url: String,
}

/// What outlives one connection of the loop.
#[derive(Default)]
struct Link {
    /// The session to RESUME on the next connection; None: IDENTIFY.
    session: Option<SessionState>,
    /// The last sequence number handled (what a RESUME starts after).
    seq: Option<u64>,
    /// Whether a session was READY before in this run: then a READY is a new session after
    /// an old one, and a gap. The first one is not: rooms catch up when their portals start.
    had_session: bool,
    /// Commands Discord rate limited, with when to send them again (kept across resumes).
    later: Vec<(Instant, String)>,
}

enum Outcome {
    Resume(String),
    Reidentify(String),
    Fatal(NetworkError),
    /// The receiver is gone: the session was disconnected.
    Closed,
}

pub struct Gateway {
    pub rest: Arc<Rest>,
    pub token: Secret,
    pub intents: u64,
}

impl Gateway {
    pub async fn run(self, tx: mpsc::Sender<Item>) {
        let mut link = Link::default();
        let mut failures: u32 = 0;
        loop {
            let url = match &link.session {
                Some(s) => s.resume_url.clone(),
                None => match self.gateway_url().await {
                    Ok(u) => u,
                    Err(NetworkError::LoggedOut(e)) => {
                        let _ = tx.send(Item::Fatal(NetworkError::LoggedOut(e))).await;
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        if tx.send(Item::Reconnecting(e.to_string())).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(backoff(failures)).await;
                        continue;
                    }
                },
            };
            let mut connected = false;
            let outcome = self
                .connect_once(&url, &mut link, &tx, &mut connected)
                .await;
            if connected {
                failures = 0;
            }
            failures += 1;
            let reason = match outcome {
                Outcome::Closed => return,
                Outcome::Fatal(e) => {
                    tracing::error!("Discord gateway: {e}");
                    let _ = tx.send(Item::Fatal(e)).await;
                    return;
                }
                Outcome::Resume(r) => r,
                Outcome::Reidentify(r) => {
                    link.session = None;
                    link.seq = None;
                    // a new session asks for member lists afresh (its GUILD_CREATEs)
                    link.later.clear();
                    r
                }
            };
            tracing::warn!(
                resume = link.session.is_some(),
                "Discord gateway: {reason}; reconnecting"
            );
            if tx.send(Item::Reconnecting(reason)).await.is_err() {
                return;
            }
            let wait = if failures <= 1 {
                Duration::from_millis(rand::rng().random_range(100..1000))
            } else {
                backoff(failures)
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn gateway_url(&self) -> Result<String, NetworkError> {
        let v = self
            .rest
            .bot(Method::GET, "/gateway/bot", Body::None, "gateway address")
            .await?;
        v["url"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| NetworkError::Other("gateway address: no url in the answer".into()))
    }

    async fn connect_once(
        &self,
        url: &str,
        link: &mut Link,
        tx: &mpsc::Sender<Item>,
        connected: &mut bool,
    ) -> Outcome {
        let (mut ws, _) = match tokio_tungstenite::connect_async(with_query(url)).await {
            Ok(c) => c,
            Err(e) => return Outcome::Resume(format!("cannot connect to the gateway: {e}")),
        };
        // HELLO comes first and gives the heartbeat interval.
        let hello = tokio::time::timeout(Duration::from_secs(20), ws.next()).await;
        let interval = match hello {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(&t)
                .ok()
                .filter(|v| v["op"] == 10)
                .and_then(|v| v["d"]["heartbeat_interval"].as_u64()),
            _ => None,
        };
        let Some(interval) = interval.map(Duration::from_millis) else {
            return Outcome::Resume("no HELLO from the gateway".into());
        };
        let hello_back = match (&link.session, link.seq) {
            (Some(s), Some(n)) => json!({"op": 6, "d": {
                "token": self.token.expose(), "session_id": s.id, "seq": n}}),
            _ => json!({"op": 2, "d": {
                "token": self.token.expose(),
                "intents": self.intents,
                "properties": {"os": std::env::consts::OS, "browser": "causeway", "device": "causeway"}
            }}),
        };
        if let Err(e) = ws.send(Message::Text(hello_back.to_string().into())).await {
            return Outcome::Resume(format!("gateway send failed: {e}"));
        }
        let jitter: f64 = rand::rng().random_range(0.0..1.0);
        let mut next_beat = Instant::now() + interval.mul_f64(jitter);
        let mut acked = true;
        loop {
            tokio::select! {
                msg = ws.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                            return close_outcome(code);
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Outcome::Resume(format!("connection lost: {e}")),
                        None => return Outcome::Resume("connection closed".into()),
                    };
                    match self.frame(&text, link, tx, connected).await {
                        Frame::Continue => {}
                        Frame::Send(cmd) => {
                            if let Err(e) = ws.send(Message::Text(cmd.into())).await {
                                return Outcome::Resume(format!("gateway send failed: {e}"));
                            }
                        }
                        Frame::SendAt(at, cmd) => link.later.push((at, cmd)),
                        Frame::Ack => acked = true,
                        Frame::BeatNow => next_beat = Instant::now(),
                        Frame::End(o) => {
                            let _ = ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                                code: CloseCode::Library(4900),
                                reason: "reconnecting".into(),
                            })).await;
                            return o;
                        }
                    }
                }
                _ = tokio::time::sleep_until(first_due(&link.later)), if !link.later.is_empty() => {
                    let now = Instant::now();
                    let (due, wait): (Vec<_>, Vec<_>) = link.later.drain(..).partition(|(at, _)| *at <= now);
                    link.later = wait;
                    for (_, cmd) in due {
                        if let Err(e) = ws.send(Message::Text(cmd.into())).await {
                            return Outcome::Resume(format!("gateway send failed: {e}"));
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_beat) => {
                    if !acked {
                        return Outcome::Resume("no heartbeat ACK: the connection is dead".into());
                    }
                    let beat = json!({"op": 1, "d": link.seq});
                    if let Err(e) = ws.send(Message::Text(beat.to_string().into())).await {
                        return Outcome::Resume(format!("heartbeat failed: {e}"));
                    }
                    acked = false;
                    next_beat = Instant::now() + interval;
                }
            }
        }
    }

    async fn frame(
        &self,
        text: &str,
        link: &mut Link,
        tx: &mpsc::Sender<Item>,
        connected: &mut bool,
    ) -> Frame {
        tracing::trace!(frame = %text.chars().take(200).collect::<String>(), "gateway frame");
        let typed = serde_json::from_str::<GatewayEvent>(text);
        let raw: Value = match &typed {
            Ok(_) => Value::Null,
            Err(_) => serde_json::from_str(text).unwrap_or(Value::Null),
        };
        match typed {
            Ok(GatewayEvent::Dispatch(s, event)) => {
                link.seq = Some(s);
                if let Event::Unknown(u) = &event {
                    if u.kind == "RATE_LIMITED" {
                        return rate_limited(&u.value);
                    }
                    // serenity falls back to Unknown when a known event does not fit its
                    // model: say why, the event is skipped.
                    explain_unknown(&u.kind, &u.value);
                    return Frame::Continue;
                }
                let items = match &event {
                    Event::Ready(r) => {
                        link.session = Some(SessionState {
                            id: r.ready.session_id.clone(),
                            resume_url: r.ready.resume_gateway_url.clone(),
                        });
                        let connected = Item::Connected { resumed: false };
                        // A READY is always a new session (a resumed one gets RESUMED): after
                        // an earlier one, Discord did not replay what came in between.
                        let gap = std::mem::replace(&mut link.had_session, true);
                        if gap {
                            tracing::warn!(
                                "Discord gateway: a new session; events since the last one \
                                 were missed, the rooms catch up from history"
                            );
                            vec![connected, Item::Gap]
                        } else {
                            vec![connected]
                        }
                    }
                    Event::Resumed(_) => vec![Item::Connected { resumed: true }],
                    _ => Vec::new(),
                };
                for item in items {
                    *connected = true;
                    // in order, before the READY itself and every later event
                    if tx.send(item).await.is_err() {
                        return Frame::End(Outcome::Closed);
                    }
                }
                let ask = match &event {
                    Event::GuildCreate(g) if wants_members(&g.guild, self.intents) => {
                        Some(request_members(g.guild.id.get()))
                    }
                    _ => None,
                };
                if tx.send(Item::Event(Box::new(event))).await.is_err() {
                    return Frame::End(Outcome::Closed);
                }
                ask.map_or(Frame::Continue, Frame::Send)
            }
            Ok(GatewayEvent::HeartbeatAck) => Frame::Ack,
            #[allow(deprecated)]
            Ok(GatewayEvent::Heartbeat(_)) => Frame::BeatNow,
            Ok(GatewayEvent::Reconnect) => {
                Frame::End(Outcome::Resume("Discord asked for a reconnect".into()))
            }
            Ok(GatewayEvent::InvalidateSession(true)) => {
                Frame::End(Outcome::Resume("session invalidated (resumable)".into()))
            }
            Ok(GatewayEvent::InvalidateSession(false)) => {
                // Discord asks for a random wait of 1-5 s before identifying again.
                let wait = rand::rng().random_range(1000..5000);
                tokio::time::sleep(Duration::from_millis(wait)).await;
                Frame::End(Outcome::Reidentify("session invalidated".into()))
            }
            Ok(_) => Frame::Continue,
            Err(e) => {
                if raw["op"] == 0 {
                    // An event serenity's models do not read: keep the sequence, skip it.
                    if let Some(s) = raw["s"].as_u64() {
                        link.seq = Some(s);
                    }
                    tracing::warn!(
                        event = raw["t"].as_str().unwrap_or("?"),
                        "unreadable Discord event skipped: {e}"
                    );
                } else {
                    tracing::warn!("unreadable gateway frame skipped: {e}");
                }
                Frame::Continue
            }
        }
    }
}

/// Whether a guild's member list is to be asked for: GUILD_CREATE carries all members only
/// of small guilds, and only to a bot with the presence intent (which Causeway does not ask
/// for); the whole list needs the GUILD_MEMBERS intent.
pub fn wants_members(g: &serenity::model::guild::Guild, intents: u64) -> bool {
    intents & GUILD_MEMBERS != 0 && (g.members.len() as u64) < g.member_count
}

/// REQUEST_GUILD_MEMBERS (op 8) for every member: GUILD_MEMBERS_CHUNKs of up to 1000 follow.
fn request_members(guild: u64) -> String {
    json!({"op": 8, "d": {"guild_id": guild.to_string(), "query": "", "limit": 0,
        "nonce": format!("members-{guild}")}})
    .to_string()
}

/// RATE_LIMITED (serenity 0.12 has no model for it): Discord refused a command for
/// `retry_after` seconds. Member lists (op 8, one full request per guild every 30 s) are
/// asked for again then; nothing else is sent that Discord rate limits this way.
fn rate_limited(d: &Value) -> Frame {
    let guild = d["meta"]["guild_id"].as_str().and_then(|g| g.parse().ok());
    match (d["opcode"].as_u64(), guild) {
        (Some(8), Some(guild)) => {
            let wait = d["retry_after"].as_f64().unwrap_or(30.0);
            tracing::info!(
                guild,
                wait,
                "member list request rate limited; asking again then"
            );
            Frame::SendAt(
                Instant::now() + crate::rest::seconds(wait, 300.0),
                request_members(guild),
            )
        }
        _ => {
            tracing::warn!(event = %d, "Discord rate limited a gateway command");
            Frame::Continue
        }
    }
}

fn first_due(later: &[(Instant, String)]) -> Instant {
    later
        .iter()
        .map(|(at, _)| *at)
        .min()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
}

fn explain_unknown(kind: &str, value: &Value) {
    let framed = json!({"t": kind, "d": value});
    let why = match serde_json::from_value::<Event>(framed) {
        Ok(Event::Unknown(_)) => {
            // Re-read as the typed event to get serde's reason.
            let known = json!({"t": kind, "d": value});
            serde_json::from_value::<KnownOnly>(known)
                .err()
                .map(|e| e.to_string())
        }
        _ => None,
    };
    match why {
        Some(e) => tracing::warn!(event = kind, "unreadable Discord event skipped: {e}"),
        None => tracing::debug!(event = kind, "Discord event not handled"),
    }
}

/// serenity's event enum without its catch-all, to learn why an event did not fit.
#[derive(serde::Deserialize)]
#[serde(tag = "t", content = "d", rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(dead_code)]
enum KnownOnly {
    Ready(serenity::model::event::ReadyEvent),
    GuildCreate(serenity::model::event::GuildCreateEvent),
    ChannelCreate(serenity::model::event::ChannelCreateEvent),
    ChannelUpdate(serenity::model::event::ChannelUpdateEvent),
    ChannelDelete(serenity::model::event::ChannelDeleteEvent),
    ThreadCreate(serenity::model::event::ThreadCreateEvent),
    ThreadUpdate(serenity::model::event::ThreadUpdateEvent),
    ThreadDelete(serenity::model::event::ThreadDeleteEvent),
    MessageCreate(serenity::model::event::MessageCreateEvent),
    MessageUpdate(serenity::model::event::MessageUpdateEvent),
    MessageDelete(serenity::model::event::MessageDeleteEvent),
    MessageDeleteBulk(serenity::model::event::MessageDeleteBulkEvent),
    MessageReactionAdd(serenity::model::event::ReactionAddEvent),
    MessageReactionRemove(serenity::model::event::ReactionRemoveEvent),
    MessageReactionRemoveAll(serenity::model::event::ReactionRemoveAllEvent),
    MessageReactionRemoveEmoji(serenity::model::event::ReactionRemoveEmojiEvent),
    TypingStart(serenity::model::event::TypingStartEvent),
    GuildMemberAdd(serenity::model::event::GuildMemberAddEvent),
    GuildMemberUpdate(serenity::model::event::GuildMemberUpdateEvent),
    GuildMemberRemove(serenity::model::event::GuildMemberRemoveEvent),
    GuildUpdate(serenity::model::event::GuildUpdateEvent),
    GuildRoleCreate(serenity::model::event::GuildRoleCreateEvent),
    GuildRoleUpdate(serenity::model::event::GuildRoleUpdateEvent),
    GuildRoleDelete(serenity::model::event::GuildRoleDeleteEvent),
    Resumed(serenity::model::event::ResumedEvent),
}

enum Frame {
    Continue,
    /// Handled; now send this command.
    Send(String),
    /// Send this command at that time (Discord rate limited it).
    SendAt(Instant, String),
    Ack,
    BeatNow,
    End(Outcome),
}

fn close_outcome(code: u16) -> Outcome {
    match code {
        4004 => Outcome::Fatal(NetworkError::LoggedOut(
            "Discord refused the bot token (gateway close code 4004)".into(),
        )),
        4014 => Outcome::Fatal(NetworkError::Forbidden(
            "Discord refused a privileged intent (gateway close code 4014): enable the Message \
             Content intent (and the Server Members intent when members_intent = true) for \
             the bot in Discord's Developer Portal"
                .into(),
        )),
        4010..=4013 => Outcome::Fatal(NetworkError::Other(format!(
            "Discord refused the gateway handshake (close code {code})"
        ))),
        4007 | 4009 => Outcome::Reidentify(format!("session expired (close code {code})")),
        _ => Outcome::Resume(format!("gateway closed (code {code})")),
    }
}

/// 0.5 s doubling to 30 s, with jitter.
fn backoff(failures: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << failures.min(6)).min(30_000);
    Duration::from_millis(base / 2 + rand::rng().random_range(0..=base / 2))
}

/// The gateway URL with the API version and encoding.
fn with_query(url: &str) -> String {
    if url.contains('?') {
        return url.to_string();
    }
    let has_path = url
        .split("://")
        .nth(1)
        .is_some_and(|rest| rest.contains('/'));
    let sep = if has_path { "" } else { "/" };
    format!("{url}{sep}?v=10&encoding=json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_close_codes() {
        assert_eq!(
            with_query("wss://gateway.discord.gg"),
            "wss://gateway.discord.gg/?v=10&encoding=json"
        );
        assert_eq!(
            with_query("ws://127.0.0.1:9/gateway"),
            "ws://127.0.0.1:9/gateway?v=10&encoding=json"
        );
        assert!(matches!(
            close_outcome(4004),
            Outcome::Fatal(NetworkError::LoggedOut(_))
        ));
        assert!(matches!(
            close_outcome(4014),
            Outcome::Fatal(NetworkError::Forbidden(_))
        ));
        assert!(matches!(close_outcome(4009), Outcome::Reidentify(_)));
        assert!(matches!(close_outcome(1006), Outcome::Resume(_)));
        assert!(matches!(close_outcome(4000), Outcome::Resume(_)));
        for n in 1..20 {
            assert!(backoff(n) <= Duration::from_secs(30));
        }
    }
}
