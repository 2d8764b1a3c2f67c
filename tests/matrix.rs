//! The Matrix adapter end to end: real Prosody, a real Synapse (from PyPI, started by
//! scripts/start-synapse.sh with the registration `causeway gen-registration` writes),
//! a real XMPP client, and a Matrix user driven over the client-server API.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A private Synapse on loopback, stopped (by PID) when dropped.
struct Synapse {
    dir: tempfile::TempDir,
    url: String,
}

impl Synapse {
    fn start(registration: &std::path::Path) -> Synapse {
        let dir = tempfile::Builder::new()
            .prefix("causeway-synapse-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(root.join("scripts/start-synapse.sh"))
            .arg(dir.path())
            .env("PORT", port.to_string())
            .env("USERS", format!("alice:{PASSWORD}"))
            .env("APPSERVICE_FILE", registration)
            .env("LOG_LEVEL", "WARNING")
            .output()
            .expect("run start-synapse.sh");
        assert!(
            out.status.success(),
            "synapse did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Synapse {
            dir,
            url: format!("http://127.0.0.1:{port}"),
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

/// A Matrix user over the client-server API.
struct MatrixUser {
    http: reqwest::Client,
    base: String,
    token: String,
    since: Option<String>,
    txn: u64,
}

impl MatrixUser {
    async fn login(base: &str, user: &str) -> MatrixUser {
        let http = reqwest::Client::new();
        let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": PASSWORD});
        let v: Value = serde_json::from_str(
            &http
                .post(format!("{base}/_matrix/client/v3/login"))
                .body(body.to_string())
                .send()
                .await
                .expect("login")
                .text()
                .await
                .expect("login body"),
        )
        .expect("login json");
        MatrixUser {
            http,
            base: base.to_string(),
            token: v["access_token"]
                .as_str()
                .expect("access token")
                .to_string(),
            since: None,
            txn: 0,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let text = req
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Sync until `f` finds what it looks for in a sync answer.
    async fn until<T>(&mut self, what: &str, f: impl Fn(&Value) -> Option<T>) -> T {
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let since = self
                .since
                .as_ref()
                .map(|s| format!("&since={s}"))
                .unwrap_or_default();
            let v = self
                .call(
                    reqwest::Method::GET,
                    &format!("/_matrix/client/v3/sync?timeout=500{since}"),
                    None,
                )
                .await;
            if let Some(next) = v["next_batch"].as_str() {
                self.since = Some(next.to_string());
            }
            if let Some(found) = f(&v) {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "timed out waiting for {what}"
            );
        }
    }

    async fn send(&mut self, room: &str, text: &str) -> String {
        self.txn += 1;
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/t{}",
            room.replace('!', "%21").replace(':', "%3A"),
            self.txn
        );
        let v = self
            .call(
                reqwest::Method::PUT,
                &path,
                Some(json!({"msgtype": "m.text", "body": text})),
            )
            .await;
        v["event_id"].as_str().expect("event id").to_string()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_direct_reach_on_prosody() {
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
            [store]
            url = "{store}"
            [http]
            listen = "{http}"
            [media]
            dir = "{media}"
            [networks.matrix]
            homeserver_url = "{hs}"
            server_name = "localhost"
            registration = "{reg}"
            "#,
            port = server.component,
            media = dir.path().join("media").display(),
            reg = registration.display(),
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
    let config = causeway::config::Config::load_with_env(&path, Vec::new()).expect("config");
    let gw = Running::start(config).await;
    let reg = causeway_matrix::Registration::read(&registration).expect("registration");

    // an XMPP user with no Matrix account writes to alice
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
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
            &format!(
                "/_matrix/client/v3/rooms/{}/join",
                room.replace('!', "%21").replace(':', "%3A")
            ),
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
    alice.send(&room, "hi juliet").await;
    let answer = juliet
        .expect("alice's answer", SEC, |e| {
            e.attr("from").is_some_and(|f| f.starts_with(&alice_jid))
                && body(e).as_deref() == Some("hi juliet")
        })
        .await;
    assert_eq!(answer.attr("type"), Some("chat"));

    // a second message goes to the same room
    juliet.send_xml(&chat("m2", "second")).await;
    alice
        .until("the second message", |v| {
            timeline(v)
                .into_iter()
                .find(|(r, e)| *r == room && e["content"]["body"] == "second")
        })
        .await;

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

    juliet.close().await;
    gw.stop().await;
    drop(synapse);
}
