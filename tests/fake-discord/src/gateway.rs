//! The gateway: HELLO, IDENTIFY -> READY + GUILD_CREATE, REQUEST_GUILD_MEMBERS ->
//! GUILD_MEMBERS_CHUNK (`members.rs`), dispatches to the sessions whose intents ask for them,
//! heartbeats, RESUME (replaying what
//! the session missed, then RESUMED), close codes 4004 (bad token) and 4014 (disallowed
//! intents). Dispatches are numbered per session and kept, so a resumed session gets every
//! event after the sequence number it resumes from.

use crate::{
    FakeDiscord, GwSession, WsOut, INTENT_GUILD_MEMBERS, INTENT_GUILD_PRESENCES,
    INTENT_MESSAGE_CONTENT,
};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const PRIVILEGED: u64 = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT;

pub async fn serve(fake: FakeDiscord, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<WsOut>();
    let conn = {
        let mut s = fake.lock();
        s.connections += 1;
        s.connections
    };
    let hello = json!({"op": 10, "d": {"heartbeat_interval": fake.lock().opts.heartbeat_interval_ms}, "s": null, "t": null});
    if sink
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut session: Option<String> = None;
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(WsOut::Frame(f)) => {
                    if sink.send(Message::Text(f.into())).await.is_err() {
                        break;
                    }
                }
                Some(WsOut::Drop) | None => break,
            },
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    let _ = close(&mut sink, 4002, "Decode error").await;
                    break;
                };
                match v["op"].as_u64() {
                    Some(1) => {
                        let _ = sink.send(Message::Text(json!({"op": 11}).to_string().into())).await;
                    }
                    Some(2) => match identify(&fake, &v["d"], conn, &tx) {
                        Ok(id) => session = Some(id),
                        Err((code, reason)) => {
                            let _ = close(&mut sink, code, reason).await;
                            break;
                        }
                    },
                    Some(6) => match resume(&fake, &v["d"], conn, &tx) {
                        Ok(id) => session = Some(id),
                        Err(()) => {
                            let _ = sink.send(Message::Text(json!({"op": 9, "d": false}).to_string().into())).await;
                        }
                    },
                    Some(8) => {
                        if let Some(id) = &session {
                            fake.lock().request_members(id, &v["d"]);
                        }
                    }
                    Some(3) => {}
                    _ => {
                        let _ = close(&mut sink, 4001, "Unknown opcode").await;
                        break;
                    }
                }
            }
        }
    }
    if let Some(id) = session {
        let mut s = fake.lock();
        if let Some(sess) = s.sessions.get_mut(&id) {
            if sess.tx.as_ref().is_some_and(|(c, _)| *c == conn) {
                sess.tx = None;
            }
        }
    }
}

async fn close(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    code: u16,
    reason: &'static str,
) -> Result<(), axum::Error> {
    sink.send(Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    })))
    .await
}

/// The token as sent: Discord documents the raw token; some clients prefix "Bot ".
fn token_ok(fake: &FakeDiscord, sent: &Value) -> bool {
    let want = fake.token();
    let got = sent.as_str().unwrap_or("");
    got == want || got.strip_prefix("Bot ") == Some(want.as_str())
}

fn identify(
    fake: &FakeDiscord,
    d: &Value,
    conn: u64,
    tx: &mpsc::UnboundedSender<WsOut>,
) -> Result<String, (u16, &'static str)> {
    if !token_ok(fake, &d["token"]) {
        return Err((4004, "Authentication failed."));
    }
    let Some(intents) = d["intents"].as_u64() else {
        return Err((4013, "Invalid intent(s)."));
    };
    let mut s = fake.lock();
    if intents & PRIVILEGED & !s.opts.privileged_intents != 0 {
        return Err((4014, "Disallowed intent(s)."));
    }
    s.identifies += 1;
    let id = format!("fake-session-{conn:04}");
    s.sessions.insert(
        id.clone(),
        GwSession {
            seq: 0,
            view: crate::members::View::from_identify(d),
            full_requests: Default::default(),
            log: Vec::new(),
            tx: Some((conn, tx.clone())),
        },
    );
    let guilds: Vec<Value> = s
        .guilds
        .iter()
        .map(|g| json!({"id": g.id, "unavailable": true}))
        .collect();
    let ready = json!({
        "v": 10,
        "user": s.bot,
        "guilds": guilds,
        "session_id": id,
        "resume_gateway_url": s.gateway_url(),
        "shard": [0, 1],
        "application": {"id": s.bot["id"], "flags": 0}
    });
    let view = crate::members::View::from_identify(d);
    let gids: Vec<String> = s.guilds.iter().map(|g| g.id.clone()).collect();
    let mut frames = vec![("READY", ready)];
    frames.extend(
        gids.iter()
            .map(|g| ("GUILD_CREATE", s.guild_create(g, view))),
    );
    // Only this new session gets its READY and GUILD_CREATEs.
    for (t, d) in frames {
        s.send_to(&id, t, d);
    }
    Ok(id)
}

fn resume(
    fake: &FakeDiscord,
    d: &Value,
    conn: u64,
    tx: &mpsc::UnboundedSender<WsOut>,
) -> Result<String, ()> {
    if !token_ok(fake, &d["token"]) {
        return Err(());
    }
    let id = d["session_id"].as_str().ok_or(())?.to_string();
    let from = d["seq"].as_u64().unwrap_or(0);
    let mut s = fake.lock();
    s.resumes += 1;
    let sess = s.sessions.get_mut(&id).ok_or(())?;
    if let Some((_, old)) = sess.tx.take() {
        let _ = old.send(WsOut::Drop);
    }
    for (seq, frame) in &sess.log {
        if *seq > from {
            let _ = tx.send(WsOut::Frame(frame.clone()));
        }
    }
    sess.seq += 1;
    let resumed = json!({"op": 0, "t": "RESUMED", "s": sess.seq, "d": {}}).to_string();
    sess.log.push((sess.seq, resumed.clone()));
    let _ = tx.send(WsOut::Frame(resumed));
    sess.tx = Some((conn, tx.clone()));
    Ok(id)
}

/// The intent a session needs to get a dispatch (Discord's intents table; None: always).
/// Message, reaction and typing events outside a guild need the direct-message intents.
pub(crate) fn intent_of(t: &str, d: &Value) -> Option<u64> {
    let in_guild = !d["guild_id"].is_null();
    let bit = match t {
        "GUILD_CREATE"
        | "GUILD_UPDATE"
        | "GUILD_DELETE"
        | "GUILD_ROLE_CREATE"
        | "GUILD_ROLE_UPDATE"
        | "GUILD_ROLE_DELETE"
        | "CHANNEL_CREATE"
        | "CHANNEL_UPDATE"
        | "CHANNEL_DELETE"
        | "CHANNEL_PINS_UPDATE"
        | "THREAD_CREATE"
        | "THREAD_UPDATE"
        | "THREAD_DELETE"
        | "THREAD_LIST_SYNC"
        | "THREAD_MEMBER_UPDATE" => 0,
        "GUILD_MEMBER_ADD"
        | "GUILD_MEMBER_UPDATE"
        | "GUILD_MEMBER_REMOVE"
        | "THREAD_MEMBERS_UPDATE" => 1,
        "MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE" | "MESSAGE_DELETE_BULK" => {
            if in_guild {
                9
            } else {
                12
            }
        }
        "MESSAGE_REACTION_ADD"
        | "MESSAGE_REACTION_REMOVE"
        | "MESSAGE_REACTION_REMOVE_ALL"
        | "MESSAGE_REACTION_REMOVE_EMOJI" => {
            if in_guild {
                10
            } else {
                13
            }
        }
        "TYPING_START" => {
            if in_guild {
                11
            } else {
                14
            }
        }
        _ => return None,
    };
    Some(1 << bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_need_their_intents() {
        let guild = json!({"guild_id": "1"});
        let dm = json!({"channel_id": "2"});
        let cases = [
            ("GUILD_CREATE", &guild, Some(1 << 0)),
            ("GUILD_MEMBER_ADD", &guild, Some(1 << 1)),
            ("MESSAGE_CREATE", &guild, Some(1 << 9)),
            ("MESSAGE_CREATE", &dm, Some(1 << 12)),
            ("MESSAGE_REACTION_ADD", &guild, Some(1 << 10)),
            ("TYPING_START", &dm, Some(1 << 14)),
            ("GUILD_MEMBERS_CHUNK", &guild, None),
            ("READY", &dm, None),
        ];
        for (t, d, want) in cases {
            assert_eq!(intent_of(t, d), want, "{t} {d}");
        }
    }
}
