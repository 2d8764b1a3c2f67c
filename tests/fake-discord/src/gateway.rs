//! The gateway: HELLO, IDENTIFY -> READY + GUILD_CREATE, REQUEST_GUILD_MEMBERS ->
//! GUILD_MEMBERS_CHUNK (`members.rs`), dispatches to the sessions whose intents ask for them,
//! heartbeats, RESUME (replaying what
//! the session missed, then RESUMED), close codes 4004 (bad token), 4005 (a second IDENTIFY
//! on an authenticated connection), 4014 (disallowed intents) and 4009 (session timed out).
//! Dispatches are numbered per session and kept, so a resumed session gets every event after
//! the sequence number it resumes from. A session that was ended (op 9 Invalid Session with
//! `d: false`, 4009) is forgotten: a RESUME of it gets op 9 `d: false`, and the client's new
//! IDENTIFY makes a new session with a new id, which gets nothing from before.

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
                Some(WsOut::Close(code, reason)) => {
                    let _ = close(&mut sink, code, reason).await;
                    break;
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
                    Some(2) => {
                        // Discord: "you sent more than one identify payload"; after an
                        // Invalid Session the connection's session is gone and one may follow.
                        let live = session.as_ref().is_some_and(|id| fake.lock().sessions.contains_key(id));
                        if live {
                            let _ = close(&mut sink, 4005, "Already authenticated.").await;
                            break;
                        }
                        let hold = fake.lock().identify_hold();
                        if let Some(wait) = hold {
                            tokio::time::sleep(wait).await;
                        }
                        match identify(&fake, &v["d"], conn, &tx) {
                            Ok(id) => session = Some(id),
                            Err((code, reason)) => {
                                let _ = close(&mut sink, code, reason).await;
                                break;
                            }
                        }
                    }
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
    // Each IDENTIFY makes a new session, also on a connection that had one (after op 9).
    let id = format!("fake-session-{:04}", s.identifies);
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

    /// What a connection was sent so far: frames as JSON, a close as `{"close": code}`.
    fn sent(rx: &mut mpsc::UnboundedReceiver<WsOut>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(o) = rx.try_recv() {
            out.push(match o {
                WsOut::Frame(f) => serde_json::from_str(&f).expect("a JSON frame"),
                WsOut::Drop => json!("drop"),
                WsOut::Close(code, _) => json!({ "close": code }),
            });
        }
        out
    }

    fn kinds(frames: &[Value]) -> Vec<&str> {
        frames.iter().filter_map(|f| f["t"].as_str()).collect()
    }

    /// A guild with a channel and a member who posts; the IDENTIFY payload of a bot that
    /// gets guild messages.
    fn world(fake: &FakeDiscord) -> (String, String, Value) {
        let g = fake.add_guild("G");
        let channel = fake.add_channel(&g, "general", 0, None);
        let ann = fake.add_user("ann", None);
        fake.add_member(&g, &ann, None);
        let identify =
            json!({"token": fake.token(), "intents": 1 | 1 << 9 | INTENT_MESSAGE_CONTENT});
        (channel, ann, identify)
    }

    #[tokio::test]
    async fn an_invalidated_session_is_not_resumed_and_misses_what_came_meanwhile() {
        let fake = FakeDiscord::start(Default::default()).await.expect("fake");
        let (channel, ann, hello) = world(&fake);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let old = identify(&fake, &hello, 1, &tx).expect("identify");
        let before = fake.post(&channel, &ann, crate::Post::text("before"));
        let frames = sent(&mut rx);
        assert_eq!(kinds(&frames), ["READY", "GUILD_CREATE", "MESSAGE_CREATE"]);
        let seq = frames[2]["s"].as_u64().expect("seq");

        assert_eq!(fake.invalidate_session(), 1);
        assert_eq!(sent(&mut rx), [json!({"op": 9, "d": false})]);
        assert_eq!((fake.sessions(), fake.connected()), (0, 0));
        let missed: Vec<String> = (0..3)
            .map(|i| fake.post(&channel, &ann, crate::Post::text(format!("missed {i}"))))
            .collect();
        assert!(sent(&mut rx).is_empty(), "dispatched to no one");

        // the old session cannot be resumed (the connection then gets op 9 d=false)
        let again = json!({"token": fake.token(), "session_id": old, "seq": seq});
        assert!(resume(&fake, &again, 2, &tx).is_err());
        // a new IDENTIFY: a new session that gets nothing from before
        let new = identify(&fake, &hello, 2, &tx).expect("identify");
        assert_ne!(new, old);
        let frames = sent(&mut rx);
        assert_eq!(kinds(&frames), ["READY", "GUILD_CREATE"]);
        assert_eq!(frames[0]["d"]["session_id"], json!(new));
        assert_eq!(frames[0]["s"], json!(1), "numbered afresh");
        let after = fake.post(&channel, &ann, crate::Post::text("after"));
        let frames = sent(&mut rx);
        assert_eq!(kinds(&frames), ["MESSAGE_CREATE"]);
        assert_eq!(frames[0]["d"]["id"], json!(after));

        // REST history has them all, in order
        let mut want = vec![before.clone()];
        want.extend(missed.iter().cloned());
        want.push(after);
        let mut q = std::collections::BTreeMap::new();
        q.insert("after".to_string(), before);
        let listed = crate::rest::list_messages(&fake.lock(), &channel, &q);
        let mut ids: Vec<String> = listed
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect();
        ids.reverse(); // newest first, as Discord lists them
        assert_eq!(ids, want[1..]);
    }

    #[tokio::test]
    async fn an_expired_session_is_closed_with_4009_and_identifies_wait_out_a_hold() {
        let fake = FakeDiscord::start(Default::default()).await.expect("fake");
        let (_, _, hello) = world(&fake);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let old = identify(&fake, &hello, 1, &tx).expect("identify");
        sent(&mut rx);
        assert_eq!(fake.expire_session(), 1);
        assert_eq!(sent(&mut rx), [json!({"close": 4009})]);
        let again = json!({"token": fake.token(), "session_id": old, "seq": 1});
        assert!(resume(&fake, &again, 2, &tx).is_err());

        assert!(fake.lock().identify_hold().is_none());
        identify(&fake, &hello, 2, &tx).expect("identify");
        let hold = std::time::Duration::from_secs(5);
        assert_eq!(fake.invalidate_and_hold(hold), 1);
        let left = fake.lock().identify_hold().expect("held");
        assert!(left <= hold && left > hold / 2, "{left:?}");
    }
}
