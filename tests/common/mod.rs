//! The test kit: real servers started by the project's scripts on free loopback ports, a
//! real XMPP client (slixmpp, c2s over TCP, driven through tests/client.py) and Causeway run in-process with the demo
//! network, whose handle injects remote events and reads what the bridge sent.
#![allow(dead_code)]

mod files;
#[allow(unused_imports)]
pub use files::{file_redirect, file_server, files_host, internal_service};

use causeway::config::Config;
use causeway_demo::{DemoConfig, DemoHandle, DemoNetwork};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_xmpp::minidom::Element;

pub const DOMAIN: &str = "demo.localhost";
/// The Prosody pubsub service spaces are mirrored to (Movim looks at spaces.<host>).
pub const MIRROR: &str = "spaces.localhost";
pub const SECRET: &str = "test-secret-7f3a";
/// The component domain of the Discord network in the tests.
pub const DISCORD: &str = "discord.localhost";
/// The component domain of the Matrix network in the tests.
pub const MATRIX: &str = "matrix.localhost";
pub const PASSWORD: &str = "pass-for-tests";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Prosody,
    Ejabberd,
}

/// A real XMPP server on loopback, stopped (by PID) when dropped.
pub struct Server {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    pub c2s: u16,
    pub component: u16,
    pub pidfile: PathBuf,
    env: Vec<(String, String)>,
}

/// Accounts created by the start script; others are registered in band by the tests.
pub const USERS: &[&str] = &["juliet", "romeo", "nurse"];

impl Server {
    pub fn start(kind: Kind) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("causeway-test-")
            .tempdir()
            .expect("tempdir");
        let (c2s, component) = (free_port(), free_port());
        let users: Vec<String> = USERS.iter().map(|u| format!("{u}:{PASSWORD}")).collect();
        let mut env = vec![
            ("C2S_PORT".to_string(), c2s.to_string()),
            ("COMPONENT_PORT".to_string(), component.to_string()),
            (
                "COMPONENTS".to_string(),
                format!("{DOMAIN}:{SECRET} spaces.{DOMAIN}:{SECRET} {DISCORD}:{SECRET} spaces.{DISCORD}:{SECRET} {MATRIX}:{SECRET} spaces.{MATRIX}:{SECRET}"),
            ),
            ("USERS".to_string(), users.join(" ")),
        ];
        if kind == Kind::Prosody {
            // the server's own pubsub service, where Causeway mirrors its spaces
            env.push(("PUBSUB".into(), format!("{MIRROR}:{DOMAIN}")));
        }
        if kind == Kind::Ejabberd {
            env.push(("DIST_PORT".into(), free_port().to_string()));
            env.push(("NODE".into(), format!("cwtest{}", free_port())));
        }
        let server = Server {
            kind,
            pidfile: dir.path().join(match kind {
                Kind::Prosody => "prosody.pid",
                Kind::Ejabberd => "ejabberd.pid",
            }),
            dir,
            c2s,
            component,
            env,
        };
        server.launch();
        server
    }

    fn script(&self) -> PathBuf {
        root().join(match self.kind {
            Kind::Prosody => "scripts/start-prosody.sh",
            Kind::Ejabberd => "scripts/start-ejabberd.sh",
        })
    }

    pub fn launch(&self) {
        let out = Command::new(self.script())
            .arg(self.dir.path())
            .envs(self.env.iter().cloned())
            .output()
            .expect("run start script");
        assert!(
            out.status.success(),
            "server did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            for _ in 0..100 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }

    pub fn config(&self, store_url: &str, http: &str) -> Config {
        let toml = format!(
            r#"
            [xmpp]
            server = "127.0.0.1:{port}"
            server_domain = "localhost"
            ping_interval_secs = 2
            max_body_bytes = 4096
            [[xmpp.components]]
            domain = "{DOMAIN}"
            network = "demo"
            secret = "{SECRET}"
            spaces_domain = "spaces.{DOMAIN}"
            {mirror}
            [store]
            url = "{store_url}"
            [http]
            listen = "{http}"
            [bridge]
            history_on_join = 500
            admins = ["admin@localhost"]
            [media]
            dir = "{media}"
            max_bytes = 100000
            [egress]
            allow = ["{files}"]
            [networks.demo]
            rooms = ["lobby", "random", "tea room"]
            "#,
            port = self.component,
            media = self.dir.path().join("media").display(),
            files = files_host(),
            mirror = if self.kind == Kind::Prosody {
                format!("spaces_mirror = \"{MIRROR}\"")
            } else {
                String::new()
            }
        );
        let path = self.dir.path().join("causeway.toml");
        std::fs::write(&path, toml).expect("write config");
        Config::load_with_env(&path, Vec::new()).expect("test config")
    }
}

impl Server {
    /// Causeway's config for the Discord network, talking to a fake Discord.
    pub fn discord_config(
        &self,
        store_url: &str,
        http: &str,
        fake: &fake_discord::FakeDiscord,
    ) -> Config {
        let path = self.dir.path().join("causeway-discord.toml");
        std::fs::write(&path, self.discord_toml(store_url, http, fake)).expect("write config");
        Config::load_with_env(&path, Vec::new()).expect("test config")
    }

    /// The text of `discord_config` (for the binary run as its own process).
    pub fn discord_toml(
        &self,
        store_url: &str,
        http: &str,
        fake: &fake_discord::FakeDiscord,
    ) -> String {
        format!(
            r#"
            [xmpp]
            server = "127.0.0.1:{port}"
            server_domain = "localhost"
            ping_interval_secs = 2
            max_body_bytes = 20000
            [[xmpp.components]]
            domain = "{DISCORD}"
            network = "discord"
            secret = "{SECRET}"
            spaces_domain = "spaces.{DISCORD}"
            [store]
            url = "{store_url}"
            [http]
            listen = "{http}"
            [bridge]
            history_on_join = 0
            admins = ["admin@localhost"]
            [media]
            dir = "{media}"
            max_bytes = 100000
            public_url = "http://{http}"
            [egress]
            allow = ["{files}"]
            [networks.discord]
            token = "{token}"
            api_url = "{api}"
            cdn_url = "{cdn}"
            members_intent = true
            "#,
            port = self.component,
            media = self.dir.path().join("media").display(),
            token = fake.token(),
            files = files_host(),
            api = fake.api_url(),
            cdn = fake.cdn_url(),
        )
    }
}

/// Causeway running in-process with the networks its config names.
pub struct Running {
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), causeway::RunError>>,
    pub http: String,
}

impl Running {
    pub async fn start(config: Config) -> Running {
        init_log();
        let http = config.http.listen.clone();
        let nets = causeway::networks::build(&config).expect("networks");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(causeway::run_with(config, nets, shutdown.clone()));
        let end = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (code, _) = get(&http, "/health").await;
            if code == 200 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "Causeway not healthy in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Running {
            shutdown,
            task,
            http,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("gateway stops in time");
        r.expect("gateway task").expect("gateway ran cleanly");
    }
}

async fn get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let _ = s
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await;
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf).await;
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/stop.sh"))
            .arg(&self.pidfile)
            .arg("10")
            .status();
    }
}

/// Causeway running in-process with a demo network.
pub struct Gateway {
    pub demo: DemoHandle,
    /// The remote network itself: it outlives a restart of Causeway.
    pub net: DemoNetwork,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), causeway::RunError>>,
    pub http: String,
}

impl Gateway {
    pub async fn start(server: &Server, store_url: &str) -> Gateway {
        Self::start_with(server, store_url, |_| {}).await
    }

    /// `start`, with the test's own changes to the config.
    pub async fn start_with(
        server: &Server,
        store_url: &str,
        change: impl FnOnce(&mut Config),
    ) -> Gateway {
        init_log();
        let http = format!("127.0.0.1:{}", free_port());
        let config = server.config(store_url, &http);
        let demo_cfg: DemoConfig = config.network_section("demo").expect("demo section");
        let (net, demo) = DemoNetwork::new(demo_cfg);
        Self::launch_with(server, store_url, net, demo, change).await
    }

    /// Stop Causeway and start it again on the same store and the same remote network.
    pub async fn restart(self, server: &Server, store_url: &str) -> Gateway {
        let (net, demo) = (self.net.clone(), self.demo.clone());
        self.stop().await;
        Self::launch(server, store_url, net, demo).await
    }

    pub async fn launch(
        server: &Server,
        store_url: &str,
        net: DemoNetwork,
        demo: DemoHandle,
    ) -> Gateway {
        Self::launch_with(server, store_url, net, demo, |_| {}).await
    }

    /// `launch`, with the test's own changes to the config.
    pub async fn launch_with(
        server: &Server,
        store_url: &str,
        net: DemoNetwork,
        demo: DemoHandle,
        change: impl FnOnce(&mut Config),
    ) -> Gateway {
        let http = format!("127.0.0.1:{}", free_port());
        let mut config = server.config(store_url, &http);
        change(&mut config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(causeway::run_with(
            config,
            vec![Arc::new(net.clone())],
            shutdown.clone(),
        ));
        let gw = Gateway {
            net,
            demo,
            shutdown,
            task,
            http,
        };
        gw.wait_healthy(true, Duration::from_secs(20)).await;
        gw
    }

    pub async fn http_get(&self, path: &str) -> (u16, String) {
        get(&self.http, path).await
    }

    pub async fn wait_healthy(&self, want: bool, within: Duration) {
        let end = tokio::time::Instant::now() + within;
        loop {
            let (code, body) = self.http_get("/health").await;
            if (code == 200) == want && code != 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "health did not become {want}: {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("gateway stops in time");
        r.expect("gateway task").expect("gateway ran cleanly");
    }
}

/// A real XMPP client session: slixmpp (tests/client.py) speaking c2s to the server.
pub struct XmppClient {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    pub jid: String,
    /// Stanzas received and not yet taken.
    pub inbox: Vec<Element>,
}

#[derive(serde::Deserialize)]
struct ClientLine {
    online: Option<String>,
    stanza: Option<String>,
    error: Option<String>,
}

impl XmppClient {
    pub async fn connect(server: &Server, user: &str, resource: &str) -> XmppClient {
        Self::start(server, user, resource, false).await
    }

    /// A new account, created by in-band registration (XEP-0077) before logging in.
    pub async fn register(server: &Server, user: &str, resource: &str) -> XmppClient {
        Self::start(server, user, resource, true).await
    }

    async fn start(server: &Server, user: &str, resource: &str, register: bool) -> XmppClient {
        use tokio::io::AsyncBufReadExt;
        let jid = format!("{user}@localhost/{resource}");
        let python = std::env::var("CAUSEWAY_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = tokio::process::Command::new(python)
            .arg(root().join("tests/client.py"))
            .args([jid.as_str(), PASSWORD, "127.0.0.1", &server.c2s.to_string()])
            .args(register.then_some("--register"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/client.py (pip install slixmpp)");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let online = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .expect("client output")
                    .expect("client exited before online");
                let l: ClientLine = serde_json::from_str(&line).expect("client line");
                if let Some(e) = l.error {
                    panic!("client {jid}: {e}");
                }
                if let Some(j) = l.online {
                    return j;
                }
            }
        })
        .await
        .expect("client online in time");
        XmppClient {
            child,
            stdin,
            lines,
            jid: online,
            inbox: Vec::new(),
        }
    }

    pub async fn send_xml(&mut self, xml: &str) {
        use tokio::io::AsyncWriteExt;
        let line = serde_json::to_string(xml).expect("json") + "\n";
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("send to client");
        self.stdin.flush().await.expect("flush");
    }

    async fn next_stanza(&mut self) -> Option<Element> {
        loop {
            let line = self.lines.next_line().await.ok()??;
            let Ok(l) = serde_json::from_str::<ClientLine>(&line) else {
                continue;
            };
            if let Some(x) = l.stanza {
                // Line breaks as XML 1.0 reads them (minidom's parser rejects a lone CR in an
                // attribute value, which slixmpp writes as it is)
                let x = x.replace("\r\n", "\n").replace('\r', "\n");
                match x.parse::<Element>() {
                    Ok(el) => return Some(el),
                    // (minidom's parser stops at names and values over 8 KiB: what the server
                    // bounced back of a test's own over-long stanza)
                    Err(_) if x.len() > 8192 => {
                        eprintln!(
                            "skipping a {}-byte stanza the test parser cannot read",
                            x.len()
                        )
                    }
                    Err(e) => panic!("client gave unparsable XML ({e}): {x}"),
                }
            }
        }
    }

    /// Wait for a stanza matching `pred`; everything received meanwhile stays in the inbox.
    pub async fn expect(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Element) -> bool,
    ) -> Element {
        if let Some(pos) = self.inbox.iter().position(&pred) {
            return self.inbox.remove(pos);
        }
        let end = tokio::time::Instant::now() + within;
        loop {
            let el = match tokio::time::timeout_at(end, self.next_stanza()).await {
                Ok(Some(el)) => el,
                Ok(None) => panic!("client ended while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; received:\n{}", self.dump()),
            };
            if pred(&el) {
                return el;
            }
            self.inbox.push(el);
        }
    }

    /// Read what arrives for `within` into the inbox (while sending much: the client stops
    /// taking stanzas when its output is not read).
    pub async fn pump(&mut self, within: Duration) {
        let end = tokio::time::Instant::now() + within;
        while let Ok(Some(el)) = tokio::time::timeout_at(end, self.next_stanza()).await {
            self.inbox.push(el);
        }
    }

    /// Collect everything that arrives for `within`.
    pub async fn drain(&mut self, within: Duration) -> Vec<Element> {
        self.pump(within).await;
        std::mem::take(&mut self.inbox)
    }

    pub fn dump(&self) -> String {
        self.inbox
            .iter()
            .map(String::from)
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn close(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

pub fn child<'a>(el: &'a Element, name: &str, ns: &str) -> Option<&'a Element> {
    el.get_child(name, ns)
}

pub fn body(el: &Element) -> Option<String> {
    el.children().find(|c| c.name() == "body").map(|b| b.text())
}

pub fn error_condition(el: &Element) -> Option<String> {
    let err = el.children().find(|c| c.name() == "error")?;
    err.children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
        .map(|c| c.name().to_string())
}

pub fn statuses(el: &Element) -> Vec<String> {
    el.get_child("x", "http://jabber.org/protocol/muc#user")
        .map(|x| {
            x.children()
                .filter(|c| c.name() == "status")
                .filter_map(|c| c.attr("code").map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub const SEC: Duration = Duration::from_secs(10);

impl XmppClient {
    /// Join a room without history and wait for the end of the join (the subject).
    pub async fn join(&mut self, room: &str, nick: &str) {
        self.send_xml(&format!("<presence xmlns='jabber:client' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>")).await;
        self.expect("subject", SEC, |e| {
            e.get_child("subject", "jabber:client").is_some()
        })
        .await;
    }

    /// A groupchat message from `nick` with a body, and its stanza-id.
    pub async fn expect_body(&mut self, from: &str, text: &str) -> (Element, String) {
        let el = self
            .expect(&format!("'{text}' from {from}"), SEC, |e| {
                e.attr("from") == Some(from) && body(e).as_deref() == Some(text)
            })
            .await;
        let sid = stanza_id(&el).unwrap_or_default();
        (el, sid)
    }
}

pub fn stanza_id(el: &Element) -> Option<String> {
    el.get_child("stanza-id", "urn:xmpp:sid:0")
        .and_then(|s| s.attr("id"))
        .map(String::from)
}

/// Wait until `f` finds what it looks for (state of the demo network, typically).
pub async fn until<T>(what: &str, f: impl Fn() -> Option<T>) -> T {
    let end = tokio::time::Instant::now() + SEC;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain HTTP GET: status, raw header block, body bytes.
pub async fn http_fetch(addr: &str, path: &str) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("response");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head, buf[split + 4..].to_vec())
}

/// Send an iq and wait for its answer.
pub async fn iq(c: &mut XmppClient, id: &str, typ: &str, to: &str, inner: &str) -> Element {
    c.send_xml(&format!(
        "<iq xmlns='jabber:client' type='{typ}' to='{to}' id='{id}'>{inner}</iq>"
    ))
    .await;
    c.expect(&format!("answer to {id}"), SEC, |e| {
        e.name() == "iq" && e.attr("id") == Some(id)
    })
    .await
}

/// An attribute of a child element.
pub fn attr_of(el: &Element, name: &str, ns: &str, attr: &str) -> Option<String> {
    el.get_child(name, ns)
        .and_then(|c| c.attr(attr))
        .map(String::from)
}

/// A XEP-0444 reaction set: the message it is about and the emojis.
pub fn reaction_set(el: &Element) -> Option<(String, Vec<String>)> {
    let r = el.get_child("reactions", "urn:xmpp:reactions:0")?;
    let set = r.children().map(|c| c.text()).collect();
    Some((r.attr("id")?.to_string(), set))
}

/// Causeway's log in the test output, filtered by CAUSEWAY_TEST_LOG (default: warn).
pub fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAUSEWAY_TEST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub const MAM: &str = "urn:xmpp:mam:2";
pub const RSM: &str = "http://jabber.org/protocol/rsm";

/// One archive page (XEP-0313, paged with XEP-0059): the bodies (in the order received) and the `<fin/>`.
pub async fn page(
    client: &mut XmppClient,
    room: &str,
    qid: &str,
    set: &str,
) -> (Vec<String>, Element) {
    client
        .send_xml(&format!("<iq xmlns='jabber:client' type='set' to='{room}' id='{qid}'><query xmlns='{MAM}' queryid='{qid}'><set xmlns='{RSM}'>{set}</set></query></iq>"))
        .await;
    let iq = client
        .expect(&format!("end of query {qid}"), SEC, |e| {
            e.attr("id") == Some(qid)
        })
        .await;
    assert_eq!(iq.attr("type"), Some("result"), "{}", String::from(&iq));
    let fin = iq.get_child("fin", MAM).expect("fin").clone();
    let mut bodies = Vec::new();
    let inbox = std::mem::take(&mut client.inbox);
    for el in inbox {
        let result = el
            .get_child("result", MAM)
            .filter(|r| r.attr("queryid") == Some(qid));
        match result {
            Some(r) => {
                let fwd = r
                    .get_child("forwarded", "urn:xmpp:forward:0")
                    .expect("forwarded");
                assert!(fwd.get_child("delay", "urn:xmpp:delay").is_some());
                let msg = fwd
                    .children()
                    .find(|c| c.name() == "message")
                    .expect("message");
                assert_eq!(
                    msg.ns(),
                    "jabber:client",
                    "forwarded stanzas are client stanzas"
                );
                assert!(msg
                    .get_child("occupant-id", "urn:xmpp:occupant-id:0")
                    .is_some());
                assert_eq!(r.attr("id").map(String::from), stanza_id(msg));
                bodies.push(body(msg).unwrap_or_default());
            }
            None => client.inbox.push(el),
        }
    }
    (bodies, fin)
}

/// An admin links a remote space (a Discord guild, the demo community) with the ad-hoc
/// command on `domain`; the answer must say it was linked.
pub async fn link_space(admin: &mut XmppClient, domain: &str, space: &str) {
    let form = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='space'><value>{space}</value></field></x>"
    );
    let done = iq(
        admin,
        "link",
        "set",
        domain,
        &format!("<command xmlns='http://jabber.org/protocol/commands' node='link-space' action='complete' sessionid='s'>{form}</command>"),
    )
    .await;
    assert!(
        String::from(&done).contains("Linked"),
        "{}",
        String::from(&done)
    );
}

/// A guild with a #general on the fake Discord, Causeway bridging it (linked by the admin),
/// and Juliet in #general's room.
pub struct LinkedGuild {
    pub fake: fake_discord::FakeDiscord,
    pub guild: String,
    pub general: String,
    /// #general's room JID.
    pub room: String,
    pub gw: Running,
    pub admin: XmppClient,
    pub juliet: XmppClient,
    _dir: tempfile::TempDir,
}

impl LinkedGuild {
    /// `prepare` adds to the guild what the test needs before Causeway starts.
    pub async fn start(
        server: &Server,
        prepare: impl FnOnce(&fake_discord::FakeDiscord, &str),
    ) -> LinkedGuild {
        let fake = fake_discord::FakeDiscord::start(fake_discord::Options::default())
            .await
            .expect("fake discord");
        let guild = fake.add_guild("Fake Guild");
        let general = fake.add_channel(&guild, "general", 0, None);
        prepare(&fake, &guild);
        let dir = tempfile::tempdir().expect("tempdir");
        let store = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
        let http = format!("127.0.0.1:{}", free_port());
        let gw = Running::start(server.discord_config(&store, &http, &fake)).await;
        let mut admin = XmppClient::register(server, "admin", "desk").await;
        link_space(&mut admin, DISCORD, &guild).await;
        let room = format!("{general}@{DISCORD}");
        let mut juliet = XmppClient::connect(server, "juliet", "balcony").await;
        juliet.join(&room, "Juliet").await;
        LinkedGuild {
            fake,
            guild,
            general,
            room,
            gw,
            admin,
            juliet,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        self.juliet.close().await;
        self.admin.close().await;
        self.gw.stop().await;
    }
}
