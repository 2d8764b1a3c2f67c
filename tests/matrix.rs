//! The Matrix adapter end to end: real Prosody, a real Synapse (from PyPI, started by
//! scripts/start-synapse.sh with the registration `causeway gen-registration` writes),
//! a real XMPP client, and a Matrix user driven over the client-server API.

mod common;
use common::*;
#[path = "common/matrix_user.rs"]
mod matrix_user;
use matrix_user::{seg, MatrixUser};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A private Synapse on loopback, stopped (by PID) when dropped.
struct Synapse {
    dir: tempfile::TempDir,
    url: String,
    port: u16,
    registration: PathBuf,
}

impl Synapse {
    fn start(registration: &std::path::Path) -> Synapse {
        let dir = tempfile::Builder::new()
            .prefix("causeway-synapse-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let s = Synapse {
            dir,
            url: format!("http://127.0.0.1:{port}"),
            port,
            registration: registration.to_path_buf(),
        };
        s.launch();
        s
    }

    /// Start (or start again, on the same data and port).
    fn launch(&self) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(root.join("scripts/start-synapse.sh"))
            .arg(self.dir.path())
            .env("PORT", self.port.to_string())
            .env("USERS", format!("alice:{PASSWORD}"))
            .env("APPSERVICE_FILE", &self.registration)
            .env("LOG_LEVEL", "WARNING")
            .output()
            .expect("run start-synapse.sh");
        assert!(
            out.status.success(),
            "synapse did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGKILL: no clean shutdown.
    fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.path().join("synapse.pid")).expect("pid");
        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        let proc = format!("/proc/{}", pid.trim());
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&proc).exists() && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let _ = Command::new(root.join("scripts/stop.sh"))
            .arg(self.dir.path().join("synapse.pid"))
            .arg("10")
            .status();
    }
}

/// Timeline events of joined rooms in a sync answer: (room, event).
fn timeline(v: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(rooms) = v["rooms"]["join"].as_object() {
        for (id, r) in rooms {
            for e in r["timeline"]["events"].as_array().into_iter().flatten() {
                out.push((id.clone(), e.clone()));
            }
        }
    }
    out
}

async fn put(url: &str, token: Option<&str>, body: &Value) -> u16 {
    let mut req = reqwest::Client::new().put(url).body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Prosody, Synapse loaded with the registration `gen-registration` wrote, and the config.
struct Setup {
    server: Server,
    synapse: Synapse,
    reg: causeway_matrix::Registration,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let server = Server::start(Kind::Prosody);
    let dir = tempfile::tempdir().expect("tempdir");
    let http = format!("127.0.0.1:{}", free_port());
    let registration = dir.path().join("registration.yaml");
    let store = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    let config_text = |hs: &str| {
        format!(
            r#"
            [xmpp]
            server = "127.0.0.1:{port}"
            server_domain = "localhost"
            ping_interval_secs = 2
            [[xmpp.components]]
            domain = "{MATRIX}"
            network = "matrix"
            secret = "{SECRET}"
            spaces_domain = "spaces.{MATRIX}"
            [store]
            url = "{store}"
            [http]
            listen = "{http}"
            [bridge]
            admins = ["admin@localhost"]
            history_on_join = 0
            [media]
            dir = "{media}"
            [egress]
            allow = ["{files}"]
            [networks.matrix]
            homeserver_url = "{hs}"
            server_name = "localhost"
            registration = "{reg}"
            "#,
            port = server.component,
            media = dir.path().join("media").display(),
            reg = registration.display(),
            files = files_host(),
        )
    };
    // the registration first (as `causeway gen-registration` writes it), then Synapse with it
    let path = dir.path().join("causeway.toml");
    std::fs::write(&path, config_text("http://127.0.0.1:1")).expect("config");
    let config = causeway::config::Config::load_with_env(&path, Vec::new()).expect("config");
    let (reg_path, yaml) = causeway::networks::matrix_registration(&config).expect("registration");
    assert_eq!(reg_path, registration);
    std::fs::write(&registration, yaml).expect("write registration");
    let synapse = Synapse::start(&registration);
    std::fs::write(&path, config_text(&synapse.url)).expect("config");
    let reg = causeway_matrix::Registration::read(&registration).expect("registration");
    Setup {
        server,
        synapse,
        reg,
        config: path,
        _dir: dir,
    }
}

impl Setup {
    async fn start(&self) -> Running {
        let config =
            causeway::config::Config::load_with_env(&self.config, Vec::new()).expect("config");
        Running::start(config).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_direct_reach_on_prosody() {
    let m = setup().await;
    let (server, synapse, reg) = (&m.server, &m.synapse, &m.reg);
    let gw = m.start().await;

    // an XMPP user with no Matrix account (but an avatar in her vCard) writes to alice
    let mut juliet = XmppClient::connect(server, "juliet", "balcony").await;
    let set = iq(&mut juliet, "vc", "set", "juliet@localhost", "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgoAAAANSUhEUg==</BINVAL></PHOTO></vCard>").await;
    assert_eq!(set.attr("type"), Some("result"));
    let alice_jid = format!("alice%localhost@{MATRIX}");
    let chat = |id: &str, text: &str| {
        format!("<message xmlns='jabber:client' type='chat' to='{alice_jid}' id='{id}'><body>{text}</body></message>")
    };
    juliet.send_xml(&chat("m1", "hello alice")).await;
    let mut alice = MatrixUser::login(&synapse.url, "alice").await;
    let room = alice
        .until("the invitation", |v| {
            v["rooms"]["invite"]
                .as_object()
                .and_then(|m| m.keys().next().cloned())
        })
        .await;
    let joined = alice
        .call(
            reqwest::Method::POST,
            &format!("/_matrix/client/v3/rooms/{}/join", seg(&room)),
            Some(json!({})),
        )
        .await;
    assert_eq!(joined["room_id"].as_str(), Some(room.as_str()), "{joined}");
    let puppet = "@_xmpp_juliet=40localhost:localhost";
    let first = alice
        .until("juliet's message", |v| {
            timeline(v).into_iter().find(|(r, e)| {
                *r == room && e["type"] == "m.room.message" && e["content"]["body"] == "hello alice"
            })
        })
        .await;
    assert_eq!(first.1["sender"], puppet, "from juliet's puppet");

    // alice answers; juliet gets it from alice's JID
    let hi = alice.send(&room, "hi juliet").await;
    let answer = juliet
        .expect("alice's answer", SEC, |e| {
            e.attr("from").is_some_and(|f| f.starts_with(&alice_jid))
                && body(e).as_deref() == Some("hi juliet")
        })
        .await;
    assert_eq!(answer.attr("type"), Some("chat"));
    // juliet's displayed marker is her puppet's read receipt on Matrix
    let answer_id = answer.attr("id").expect("message id").to_string();
    juliet
        .send_xml(&format!("<message xmlns='jabber:client' type='chat' to='{alice_jid}' id='d1'><displayed xmlns='urn:xmpp:chat-markers:0' id='{answer_id}'/></message>"))
        .await;
    alice
        .until("juliet's read receipt", |v| {
            v["rooms"]["join"][room.as_str()]["ephemeral"]["events"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| {
                    e["type"] == "m.receipt"
                        && e["content"][hi.as_str()]["m.read"][puppet].is_object()
                })
                .cloned()
        })
        .await;

    // alice's read receipt is a displayed marker for juliet's message (its XMPP id)
    let first_id = first.1["event_id"].as_str().expect("event id").to_string();
    alice
        .call(
            reqwest::Method::POST,
            &format!(
                "/_matrix/client/v3/rooms/{}/receipt/m.read/{}",
                seg(&room),
                first_id.replace('$', "%24")
            ),
            Some(json!({})),
        )
        .await;
    juliet
        .expect("alice's displayed marker", SEC, |e| {
            e.attr("from").is_some_and(|f| f.starts_with(&alice_jid))
                && attr_of(e, "displayed", "urn:xmpp:chat-markers:0", "id").as_deref() == Some("m1")
        })
        .await;

    // presence both ways: alice's status reaches juliet, juliet's reaches alice
    alice
        .call(
            reqwest::Method::PUT,
            "/_matrix/client/v3/presence/%40alice%3Alocalhost/status",
            Some(json!({"presence": "online", "status_msg": "around"})),
        )
        .await;
    juliet
        .expect("alice's presence", Duration::from_secs(20), |e| {
            e.name() == "presence"
                && e.attr("from").is_some_and(|f| f.starts_with(&alice_jid))
                && e.get_child("status", "jabber:client")
                    .map(|s| s.text())
                    .as_deref()
                    == Some("around")
        })
        .await;
    juliet
        .send_xml(&format!("<presence xmlns='jabber:client' to='{alice_jid}'><show>away</show><status>busy</status></presence>"))
        .await;
    alice
        .until("juliet's presence", |v| {
            v["presence"]["events"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["sender"] == puppet && e["content"]["status_msg"] == "busy")
                .cloned()
        })
        .await;

    // a second message goes to the same room
    juliet.send_xml(&chat("m2", "second")).await;
    alice
        .until("the second message", |v| {
            timeline(v)
                .into_iter()
                .find(|(r, e)| *r == room && e["content"]["body"] == "second")
        })
        .await;

    // a Matrix user opens a direct room with an XMPP user (romeo, who never wrote to her)
    let mut romeo = XmppClient::connect(server, "romeo", "garden").await;
    let romeo_puppet = "@_xmpp_romeo=40localhost:localhost";
    let dm = alice
        .create_room(
            json!({"preset": "trusted_private_chat", "is_direct": true, "invite": [romeo_puppet]}),
        )
        .await;
    alice
        .send_json(
            &dm,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "hello romeo"}),
        )
        .await;
    let hello = romeo
        .expect("alice's first message", Duration::from_secs(20), |e| {
            body(e).as_deref() == Some("hello romeo")
        })
        .await;
    assert!(
        hello
            .attr("from")
            .is_some_and(|f| f.starts_with(&alice_jid)),
        "{}",
        String::from(&hello)
    );
    assert_eq!(hello.attr("type"), Some("chat"));
    romeo
        .send_xml(&format!("<message xmlns='jabber:client' type='chat' to='{alice_jid}' id='r1'><body>hi alice</body></message>"))
        .await;
    alice
        .until("romeo's answer in her room", |v| {
            timeline(v).into_iter().find(|(r, e)| {
                *r == dm && e["content"]["body"] == "hi alice" && e["sender"] == romeo_puppet
            })
        })
        .await;
    romeo.close().await;

    // the puppet is named after juliet and wears her avatar (read from her vCard)
    let profile = alice
        .call(
            reqwest::Method::GET,
            &format!(
                "/_matrix/client/v3/profile/{}",
                puppet.replace('@', "%40").replace(':', "%3A")
            ),
            None,
        )
        .await;
    assert_eq!(profile["displayname"], "juliet@localhost", "{profile}");
    assert!(
        profile["avatar_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("mxc://")),
        "{profile}"
    );

    // the appservice endpoint refuses wrong tokens
    let txn_url = |id: &str| format!("http://{}/_matrix/app/v1/transactions/{id}", gw.http);
    let empty = json!({"events": []});
    assert_eq!(put(&txn_url("a"), Some("wrong-token"), &empty).await, 403);
    assert_eq!(put(&txn_url("b"), None, &empty).await, 401);

    // the same transaction delivered twice is applied once
    let event = json!({
        "type": "m.room.message", "sender": "@alice:localhost", "room_id": room,
        "event_id": "$retried-event", "origin_server_ts": 1_800_000_000_000i64,
        "content": {"msgtype": "m.text", "body": "only once"}
    });
    let txn = json!({"events": [event]});
    let hs = reg.hs_token.expose();
    assert_eq!(put(&txn_url("retried"), Some(hs), &txn).await, 200);
    assert_eq!(put(&txn_url("retried"), Some(hs), &txn).await, 200);
    // and the same event in another transaction is not doubled either
    assert_eq!(put(&txn_url("retried-2"), Some(hs), &txn).await, 200);
    juliet
        .expect("the retried message", SEC, |e| {
            body(e).as_deref() == Some("only once")
        })
        .await;
    let more = juliet.drain(Duration::from_millis(800)).await;
    let again = more
        .iter()
        .filter(|e| body(e).as_deref() == Some("only once"))
        .count();
    assert_eq!(again, 0, "applied once");

    // --- a public room joined by alias: members are occupants, messages both ways ---
    let created = alice
        .call(
            reqwest::Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(json!({"preset": "public_chat", "room_alias_name": "lobby", "name": "Lobby", "topic": "all welcome"})),
        )
        .await;
    let lobby = created["room_id"]
        .as_str()
        .expect("room created")
        .to_string();
    let found = iq(
        &mut juliet,
        "g1",
        "set",
        MATRIX,
        "<query xmlns='jabber:iq:gateway'><prompt>#lobby:localhost</prompt></query>",
    )
    .await;
    let room_jid = found
        .get_child("query", "jabber:iq:gateway")
        .and_then(|q| q.children().find(|c| c.name() == "jid"))
        .map(|j| j.text())
        .unwrap_or_else(|| panic!("a JID for the alias: {}", String::from(&found)));
    juliet.join(&room_jid, "Juliet").await;
    // juliet's puppet joins the Matrix room with her
    alice
        .until("juliet's puppet joining", |v| {
            timeline(v).into_iter().find(|(r, e)| {
                *r == lobby
                    && e["type"] == "m.room.member"
                    && e["state_key"] == puppet
                    && e["content"]["membership"] == "join"
            })
        })
        .await;
    let alice_occ = format!("{room_jid}/alice");
    assert!(
        juliet
            .inbox
            .iter()
            .any(|e| e.name() == "presence" && e.attr("from") == Some(alice_occ.as_str())),
        "alice is an occupant: {}",
        juliet.dump()
    );
    let send_html = |body: &str, html: &str| json!({"msgtype": "m.text", "body": body, "format": "org.matrix.custom.html", "formatted_body": html});
    let m1 = alice
        .send_json(
            &lobby,
            "m.room.message",
            send_html("bold hi", "<strong>bold</strong> hi"),
        )
        .await;
    let (_, s1) = juliet.expect_body(&alice_occ, "*bold* hi").await;
    assert_eq!(s1, m1, "the stanza-id is the event id");
    // edit and reaction from Matrix
    let mut edit = send_html("* bold there", "* <strong>bold</strong> there");
    edit["m.new_content"] = send_html("bold there", "<strong>bold</strong> there");
    edit["m.relates_to"] = json!({"rel_type": "m.replace", "event_id": m1});
    alice.send_json(&lobby, "m.room.message", edit).await;
    let fixed = juliet.expect_body(&alice_occ, "*bold* there").await.0;
    assert_eq!(
        attr_of(&fixed, "replace", "urn:xmpp:message-correct:0", "id"),
        Some(m1.clone())
    );
    let r1 = alice
        .send_json(
            &lobby,
            "m.reaction",
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": m1, "key": "👍"}}),
        )
        .await;
    juliet
        .expect("alice's reaction", SEC, |e| {
            reaction_set(e) == Some((m1.clone(), vec!["👍".to_string()]))
        })
        .await;
    alice.redact(&lobby, &r1).await;
    juliet
        .expect("alice's reaction taken back", SEC, |e| {
            reaction_set(e) == Some((m1.clone(), vec![]))
        })
        .await;

    // from XMPP: markup, a reply, an edit, a reaction, a retraction, a file
    let gc = |id: &str, inner: &str| {
        format!("<message xmlns='jabber:client' type='groupchat' to='{room_jid}' id='{id}'>{inner}</message>")
    };
    juliet
        .send_xml(&gc("j1", "<body>hello *world*</body>"))
        .await;
    let (_, js1) = juliet
        .expect_body(&format!("{room_jid}/Juliet"), "hello *world*")
        .await;
    let seen = alice
        .until("juliet's styled message", |v| {
            timeline(v)
                .into_iter()
                .find(|(r, e)| *r == lobby && e["event_id"] == js1.as_str())
        })
        .await
        .1;
    assert_eq!(seen["content"]["body"], "hello world");
    assert_eq!(
        seen["content"]["formatted_body"],
        "hello <strong>world</strong>"
    );
    assert_eq!(seen["sender"], puppet);
    juliet
        .send_xml(&gc(
            "j2",
            &format!(
                "<body>agreed</body><reply xmlns='urn:xmpp:reply:0' to='{alice_occ}' id='{m1}'/>"
            ),
        ))
        .await;
    let reply = alice
        .until("juliet's reply", |v| {
            timeline(v)
                .into_iter()
                .find(|(_, e)| e["content"]["body"] == "agreed")
        })
        .await
        .1;
    assert_eq!(
        reply["content"]["m.relates_to"]["m.in_reply_to"]["event_id"],
        m1.as_str()
    );
    juliet
        .send_xml(&gc(
            "j3",
            "<body>hello moon</body><replace xmlns='urn:xmpp:message-correct:0' id='j1'/>",
        ))
        .await;
    let edited = alice
        .until("juliet's edit", |v| {
            timeline(v)
                .into_iter()
                .find(|(_, e)| e["content"]["m.relates_to"]["rel_type"] == "m.replace")
        })
        .await
        .1;
    assert_eq!(edited["content"]["m.relates_to"]["event_id"], js1.as_str());
    assert_eq!(edited["content"]["m.new_content"]["body"], "hello moon");
    juliet
        .send_xml(&gc("j4", &format!("<reactions xmlns='urn:xmpp:reactions:0' id='{m1}'><reaction>🎉</reaction></reactions>")))
        .await;
    let reacted = alice
        .until("juliet's reaction", |v| {
            timeline(v)
                .into_iter()
                .find(|(_, e)| e["type"] == "m.reaction")
        })
        .await
        .1;
    assert_eq!(reacted["content"]["m.relates_to"]["key"], "🎉");
    assert_eq!(reacted["content"]["m.relates_to"]["event_id"], m1.as_str());
    // from Matrix: a reply (its fallback stripped), a pill, a deletion
    let reply_body = format!("> <{puppet}> hello world\n\nnice");
    alice
        .send_json(&lobby, "m.room.message", json!({"msgtype": "m.text", "body": reply_body, "m.relates_to": {"m.in_reply_to": {"event_id": js1}}}))
        .await;
    let answer = juliet
        .expect("alice's reply", SEC, |e| {
            e.attr("from") == Some(alice_occ.as_str())
                && body(e).is_some_and(|b| b.ends_with("\nnice"))
        })
        .await;
    assert!(
        body(&answer).is_some_and(|b| b.starts_with("> Juliet:\n")),
        "the Matrix fallback stripped, XMPP's own quote added: {:?}",
        body(&answer)
    );
    assert_eq!(
        attr_of(&answer, "reply", "urn:xmpp:reply:0", "id"),
        Some(js1.clone())
    );
    alice
        .send_json(
            &lobby,
            "m.room.message",
            send_html(
                "Juliet hi",
                &format!("<a href=\"https://matrix.to/#/{puppet}\">Juliet</a> hi"),
            ),
        )
        .await;
    juliet.expect_body(&alice_occ, "Juliet hi").await;
    alice.redact(&lobby, &m1).await;
    juliet
        .expect("m1 retracted", SEC, |e| {
            String::from(e).contains("urn:xmpp:message-retract:1")
                && String::from(e).contains(&format!("id='{m1}'"))
        })
        .await;
    // from XMPP: @alice is a pill with m.mentions
    juliet.send_xml(&gc("jm", "<body>@alice look</body>")).await;
    let pill = alice
        .until("juliet's mention", |v| {
            timeline(v)
                .into_iter()
                .find(|(_, e)| e["content"]["body"] == "@alice look")
        })
        .await
        .1;
    assert_eq!(
        pill["content"]["m.mentions"]["user_ids"],
        json!(["@alice:localhost"])
    );
    assert!(
        pill["content"]["formatted_body"]
            .as_str()
            .is_some_and(|h| h.contains("https://matrix.to/#/@alice:localhost")),
        "{pill}"
    );
    juliet
        .send_xml(&gc("j5", &format!("<retract xmlns='urn:xmpp:message-retract:1' id='{js1}'/><body>/me retracted</body>")))
        .await;
    alice
        .until("juliet's retraction", |v| {
            timeline(v)
                .into_iter()
                .find(|(_, e)| e["type"] == "m.room.redaction" && e["redacts"] == js1.as_str())
        })
        .await;
    let files = file_server(vec![(
        "/pic.png",
        "image/png",
        vec![137, 80, 78, 71, 9, 9, 9],
        false,
    )])
    .await;
    let url = format!("http://{files}/pic.png");
    juliet
        .send_xml(&gc(
            "j6",
            &format!("<body>{url}</body><x xmlns='jabber:x:oob'><url>{url}</url></x>"),
        ))
        .await;
    let image = alice
        .until("juliet's image", |v| {
            timeline(v)
                .into_iter()
                .find(|(_, e)| e["content"]["msgtype"] == "m.image")
        })
        .await
        .1;
    assert_eq!(image["content"]["info"]["mimetype"], "image/png");
    assert!(image["content"]["url"]
        .as_str()
        .is_some_and(|u| u.starts_with("mxc://")));

    // an image from Matrix arrives re-hosted by Causeway
    let mxc = alice
        .upload("photo.png", "image/png", vec![137, 80, 78, 71, 1, 2, 3])
        .await;
    alice
        .send_json(&lobby, "m.room.message", json!({"msgtype": "m.image", "body": "photo.png", "url": mxc, "info": {"mimetype": "image/png", "size": 7}}))
        .await;
    let photo = juliet
        .expect("alice's image", SEC, |e| {
            e.attr("from") == Some(alice_occ.as_str()) && e.get_child("x", "jabber:x:oob").is_some()
        })
        .await;
    let link = body(&photo).unwrap_or_default();
    let path = link
        .strip_prefix(&format!("http://{}", gw.http))
        .unwrap_or_else(|| panic!("served by Causeway: {link}"));
    let (code, _, bytes) = http_fetch(&gw.http, path).await;
    assert_eq!((code, bytes), (200, vec![137, 80, 78, 71, 1, 2, 3]));

    juliet.close().await;
    gw.stop().await;
}

/// The JID the gateway gives for a pasted address (XEP-0100).
async fn gateway_jid(c: &mut XmppClient, id: &str, address: &str) -> String {
    let found = iq(
        c,
        id,
        "set",
        MATRIX,
        &format!("<query xmlns='jabber:iq:gateway'><prompt>{address}</prompt></query>"),
    )
    .await;
    found
        .get_child("query", "jabber:iq:gateway")
        .and_then(|q| q.children().find(|c| c.name() == "jid"))
        .map(|j| j.text())
        .unwrap_or_else(|| panic!("a JID for {address}: {}", String::from(&found)))
}

impl MatrixUser {
    async fn create_room(&self, body: Value) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(body),
            )
            .await;
        v["room_id"]
            .as_str()
            .unwrap_or_else(|| panic!("room created: {v}"))
            .to_string()
    }

    async fn add_child(&self, space: &str, child: &str, order: &str) {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/m.space.child/{}",
            seg(space),
            seg(child)
        );
        let v = self
            .call(
                reqwest::Method::PUT,
                &path,
                Some(json!({"via": ["localhost"], "order": order})),
            )
            .await;
        assert!(v["event_id"].is_string(), "child added: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_spaces_on_prosody() {
    let m = setup().await;
    let gw = m.start().await;
    let alice = MatrixUser::login(&m.synapse.url, "alice").await;
    let space = alice
        .create_room(json!({"name": "Community", "preset": "public_chat", "creation_content": {"type": "m.space"}}))
        .await;
    let general = alice
        .create_room(json!({"name": "General", "preset": "public_chat"}))
        .await;
    let random = alice
        .create_room(json!({"name": "Random", "preset": "public_chat"}))
        .await;
    alice.add_child(&space, &general, "1").await;
    alice.add_child(&space, &random, "2").await;

    // an admin links the space; its two rooms are its items
    let mut admin = XmppClient::register(&m.server, "admin", "desk").await;
    let form = format!("<x xmlns='jabber:x:data' type='submit'><field var='space'><value>{space}</value></field></x>");
    let done = iq(
        &mut admin,
        "link",
        "set",
        MATRIX,
        &format!("<command xmlns='http://jabber.org/protocol/commands' node='link-space' action='complete' sessionid='s'>{form}</command>"),
    )
    .await;
    assert!(
        String::from(&done).contains("Linked Community: 2 rooms"),
        "{}",
        String::from(&done)
    );
    let mut juliet = XmppClient::connect(&m.server, "juliet", "balcony").await;
    let general_jid = gateway_jid(&mut juliet, "g1", &general).await;
    let random_jid = gateway_jid(&mut juliet, "g2", &random).await;
    let spaces = format!("spaces.{MATRIX}");
    let pubsub = "http://jabber.org/protocol/pubsub";
    let items = iq(
        &mut juliet,
        "p1",
        "get",
        &spaces,
        &format!("<pubsub xmlns='{pubsub}'><items node='{space}'/></pubsub>"),
    )
    .await;
    let xml = String::from(&items);
    for jid in [&general_jid, &random_jid] {
        assert!(xml.contains(&format!("id='{jid}'")), "{jid} in {xml}");
    }
    assert!(xml.contains("General") && xml.contains("Random"), "{xml}");
    let sub = iq(
        &mut juliet,
        "p2",
        "set",
        &spaces,
        &format!(
            "<pubsub xmlns='{pubsub}'><subscribe node='{space}' jid='juliet@localhost'/></pubsub>"
        ),
    )
    .await;
    assert!(
        String::from(&sub).contains("subscription='subscribed'"),
        "{}",
        String::from(&sub)
    );

    // a child added on Matrix appears live
    let news = alice
        .create_room(json!({"name": "News", "preset": "public_chat"}))
        .await;
    alice.add_child(&space, &news, "3").await;
    let note = juliet
        .expect("the new child's notification", SEC, |e| {
            e.get_child("event", "http://jabber.org/protocol/pubsub#event")
                .is_some()
                && String::from(e).contains("News")
        })
        .await;
    let news_jid = gateway_jid(&mut juliet, "g3", &news).await;
    assert!(
        String::from(&note).contains(&news_jid),
        "{}",
        String::from(&note)
    );

    juliet.close().await;
    admin.close().await;
    gw.stop().await;
}

/// The adapter's own state, in memory (the core keeps it in its store).
#[derive(Default)]
struct MemoryKv(std::sync::Mutex<std::collections::HashMap<String, String>>);

#[async_trait::async_trait]
impl causeway_api::KvStore for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<String>, causeway_api::NetworkError> {
        Ok(self.0.lock().expect("kv").get(key).cloned())
    }
    async fn put(&self, key: &str, value: &str) -> Result<(), causeway_api::NetworkError> {
        self.0.lock().expect("kv").insert(key.into(), value.into());
        Ok(())
    }
    async fn put_new(&self, key: &str, value: &str) -> Result<bool, causeway_api::NetworkError> {
        let mut m = self.0.lock().expect("kv");
        if m.contains_key(key) {
            return Ok(false);
        }
        m.insert(key.into(), value.into());
        Ok(true)
    }
    async fn delete(&self, key: &str) -> Result<(), causeway_api::NetworkError> {
        self.0.lock().expect("kv").remove(key);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_conformance() {
    use causeway_api::Network;
    let m = setup().await;
    let alice = MatrixUser::login(&m.synapse.url, "alice").await;
    let room = alice
        .create_room(json!({"name": "Conformance", "preset": "public_chat"}))
        .await;
    // the remote has a room for the relay login: the appservice's bot is in it
    let joined = reqwest::Client::new()
        .post(format!(
            "{}/_matrix/client/v3/join/{}",
            m.synapse.url,
            seg(&room)
        ))
        .bearer_auth(m.reg.as_token.expose())
        .body("{}")
        .send()
        .await
        .expect("join");
    assert!(joined.status().is_success());
    let config = causeway::config::Config::load_with_env(&m.config, Vec::new()).expect("config");
    let section: causeway_matrix::MatrixConfig = config.network_section("matrix").expect("section");
    let net = causeway_matrix::MatrixNetwork::new(section).expect("network");
    net.attach(causeway_api::Host {
        store: std::sync::Arc::new(MemoryKv::default()),
        fetch: std::sync::Arc::new(causeway_api::NoFetch),
    });
    causeway_api::conformance::run(std::sync::Arc::new(net)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_homeserver_restart_loses_nothing() {
    let m = setup().await;
    let gw = m.start().await;
    let mut alice = MatrixUser::login(&m.synapse.url, "alice").await;
    let lobby = alice
        .create_room(json!({"name": "Lobby", "preset": "public_chat", "room_alias_name": "lobby"}))
        .await;
    let mut juliet = XmppClient::connect(&m.server, "juliet", "balcony").await;
    let room_jid = gateway_jid(&mut juliet, "g1", "#lobby:localhost").await;
    juliet.join(&room_jid, "Juliet").await;
    let alice_occ = format!("{room_jid}/alice");
    const N: usize = 200;

    // XMPP -> Matrix: Synapse killed (SIGKILL) and restarted in the middle of 200 messages
    for i in 0..N {
        juliet
            .send_xml(&format!("<message xmlns='jabber:client' type='groupchat' to='{room_jid}' id='x{i}'><body>x{i}</body></message>"))
            .await;
        if i == 60 {
            m.synapse.kill();
            m.synapse.launch();
        }
    }
    let mut got: Vec<String> = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(90);
    while got.len() < N {
        assert!(
            tokio::time::Instant::now() < end,
            "only {} of {N} reached Matrix",
            got.len()
        );
        let found = alice.until("a sync", |v| Some(timeline(v))).await;
        got.extend(
            found
                .into_iter()
                .filter(|(r, e)| *r == lobby && e["type"] == "m.room.message")
                .filter_map(|(_, e)| e["content"]["body"].as_str().map(str::to_string))
                .filter(|b| b.starts_with('x')),
        );
    }
    let want: Vec<String> = (0..N).map(|i| format!("x{i}")).collect();
    assert_eq!(got, want, "every message once, in order");

    // Matrix -> XMPP: the same, the other way
    juliet.inbox.clear();
    for i in 0..N {
        alice
            .send_json(
                &lobby,
                "m.room.message",
                json!({"msgtype": "m.text", "body": format!("y{i}")}),
            )
            .await;
        if i == 60 {
            m.synapse.kill();
            m.synapse.launch();
        }
    }
    let last = format!("y{}", N - 1);
    let el = juliet
        .expect("the last message", Duration::from_secs(90), |e| {
            e.attr("from") == Some(alice_occ.as_str()) && body(e).as_deref() == Some(last.as_str())
        })
        .await;
    juliet.inbox.push(el);
    let more = juliet.drain(Duration::from_millis(800)).await;
    let got: Vec<String> = more
        .iter()
        .filter(|e| e.attr("from") == Some(alice_occ.as_str()))
        .filter_map(body)
        .filter(|b| b.starts_with('y'))
        .collect();
    let want: Vec<String> = (0..N).map(|i| format!("y{i}")).collect();
    assert_eq!(got, want, "every message once, in order");

    juliet.close().await;
    gw.stop().await;
}
