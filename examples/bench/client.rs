//! A plain XMPP client for the benchmarks: c2s login over TCP, raw stanzas. Shared by the
//! benchmarks; each uses part of it.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use std::time::Duration;
use std::time::Instant;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::xmlstream::{initiate_stream, StreamHeader, Timeouts, XmlStream};

pub type Client = XmlStream<BufStream<TcpStream>, Element>;

pub const USER: &str = "bench";
pub const PASSWORD: &str = "pass-for-tests";

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// BENCH_LOG=<filter> shows Causeway's log (e.g. BENCH_LOG=info).
pub fn init_log() {
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
}

pub fn el(xml: &str) -> Element {
    xml.parse()
        .unwrap_or_else(|e| panic!("bench xml {xml}: {e}"))
}

pub async fn next(c: &mut Client) -> Element {
    loop {
        match c.next().await {
            Some(Ok(e)) => return e,
            Some(Err(tokio_xmpp::xmlstream::ReadError::SoftTimeout)) => continue,
            other => panic!("client stream failed: {other:?}"),
        }
    }
}

/// A plain c2s login: SASL PLAIN, stream restart, resource binding, initial presence.
pub async fn login(port: u16) -> Client {
    let timeouts = Timeouts {
        read_timeout: Duration::from_secs(60),
        response_timeout: Duration::from_secs(60),
    };
    let header = || StreamHeader {
        from: None,
        to: Some("localhost".into()),
        id: None,
    };
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("c2s connect");
    tcp.set_nodelay(true).expect("nodelay");
    let pending = initiate_stream(BufStream::new(tcp), "jabber:client", header(), timeouts)
        .await
        .expect("stream");
    let (features, mut c) = pending.recv_features::<Element>().await.expect("features");
    assert!(
        features.sasl_mechanisms.contains("PLAIN"),
        "server offers no PLAIN"
    );
    let auth = causeway::xmpp::outbound::base64_encode(format!("\0{USER}\0{PASSWORD}").as_bytes());
    c.send(&el(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{auth}</auth>"
    )))
    .await
    .expect("auth");
    let answer = next(&mut c).await;
    assert_eq!(
        answer.name(),
        "success",
        "login refused: {}",
        String::from(&answer)
    );
    let pending = c
        .initiate_reset()
        .send_header(header())
        .await
        .expect("restart");
    let (_, mut c) = pending
        .recv_features::<Element>()
        .await
        .expect("features 2");
    c.send(&el("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>")).await.expect("bind");
    while next(&mut c).await.attr("id") != Some("b") {}
    c.send(&el("<presence xmlns='jabber:client'/>"))
        .await
        .expect("presence");
    c
}

/// The median of a run's figures.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// N messages to `room` with `window` in flight, each done when reflected: messages/s.
pub async fn to_network(c: &mut Client, room: &str, tag: &str, n: usize, window: usize) -> f64 {
    to_network_timed(c, room, tag, n, window).await.0
}

/// The same, with each message's time from sent to reflected (ms, sorted).
pub async fn to_network_timed(
    c: &mut Client,
    room: &str,
    tag: &str,
    n: usize,
    window: usize,
) -> (f64, Vec<f64>) {
    let mine = format!("{room}/Bench");
    let mut in_flight: std::collections::HashMap<String, Instant> = Default::default();
    let (mut next_i, mut lat) = (0, Vec::with_capacity(n));
    let start = Instant::now();
    while lat.len() < n {
        while next_i < n && in_flight.len() < window {
            let token = format!("{tag}-{next_i}");
            let msg = el(&format!("<message xmlns='jabber:client' type='groupchat' id='{token}' to='{room}'><body>{token}</body></message>"));
            c.feed(&msg).await.expect("send");
            in_flight.insert(token, Instant::now());
            next_i += 1;
        }
        SinkExt::<&Element>::flush(c).await.expect("flush");
        let e = next(c).await;
        if e.attr("from") == Some(mine.as_str()) {
            if let Some(t) = e.attr("id").and_then(|id| in_flight.remove(id)) {
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            if e.attr("type") == Some("error") {
                panic!("refused: {}", String::from(&e));
            }
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    (n as f64 / start.elapsed().as_secs_f64(), lat)
}

/// A percentile of sorted figures.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// The benchmarks' command line: C2S_PORT COMPONENT_PORT SECRET [MESSAGES] [ROUNDS].
pub struct Args {
    pub c2s: u16,
    pub comp: u16,
    pub secret: String,
    pub n: usize,
    pub rounds: usize,
}

impl Args {
    pub fn parse(default_messages: usize) -> Args {
        let args: Vec<String> = std::env::args().collect();
        let arg = |i: usize| args.get(i).cloned();
        Args {
            c2s: arg(1).map_or(5222, |v| v.parse().expect("C2S_PORT")),
            comp: arg(2).map_or(5347, |v| v.parse().expect("COMPONENT_PORT")),
            secret: arg(3).unwrap_or_else(|| "secret".into()),
            n: arg(4).map_or(default_messages, |v| v.parse().expect("MESSAGES")),
            rounds: arg(5).map_or(3, |v| v.parse().expect("ROUNDS")),
        }
    }
}

/// The start of a bench's Causeway config: the component link to the local server (one
/// component per (domain, network), all with `secret`), a SQLite store and media directory
/// in `dir`, the HTTP listener (`""`: none) and the log level. Each bench adds its networks'
/// sections and `[bridge]`.
pub fn config_head(
    comp: u16,
    secret: &str,
    dir: &std::path::Path,
    components: &[(&str, &str)],
    http: &str,
    log: &str,
) -> String {
    let mut out = format!("[xmpp]\nserver = \"127.0.0.1:{comp}\"\nserver_domain = \"localhost\"\n");
    for (domain, network) in components {
        out += &format!(
            "[[xmpp.components]]\ndomain = \"{domain}\"\nnetwork = \"{network}\"\nsecret = \"{secret}\"\n"
        );
    }
    let dir = dir.display();
    out += &format!(
        "[store]\nurl = \"sqlite://{dir}/cw.db?mode=rwc\"\n[media]\ndir = \"{dir}/media\"\n\
         [http]\nlisten = \"{http}\"\n[log]\nlevel = \"{log}\"\n"
    );
    out
}

/// CPU time (user + system) in a /proc stat file, in seconds (0 when unreadable).
pub fn stat_cpu_secs(path: &std::path::Path) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
