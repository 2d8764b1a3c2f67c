//! XMPP -> Matrix throughput against Synapse's own ceiling (run by scripts/bench-matrix, not a
//! test).
//!
//! One private Prosody, one private Synapse (SQLite, rate limits lifted) loaded with
//! Causeway's registration, one public room. In alternating rounds:
//! - ceiling: a Matrix client posts N messages straight to Synapse, W requests in flight;
//! - causeway: an XMPP client sends N messages to the room's MUC, W in flight; Causeway
//!   reflects each only after Synapse took it, posting as the user's puppet, one at a time
//!   per room (the order of a room must hold, and Matrix orders concurrent sends freely).
//!
//! Then the room is read back: every message of the Causeway run must be there once, in
//! order. Ratios causeway/ceiling are paired within each round; medians are printed.
//!
//!   bench-matrix C2S_PORT COMPONENT_PORT SECRET [MESSAGES] [ROUNDS]

#[path = "../bench/client.rs"]
mod client;
#[path = "../../tests/common/matrix_user.rs"]
mod matrix_user;

use client::{el, free_port, login, median, next, pct, to_network, to_network_timed, PASSWORD};
use futures::SinkExt;
use matrix_user::{seg, MatrixUser};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

const WINDOW: usize = 32;
/// N messages posted straight to Synapse, `window` in flight: messages/s, and each request's
/// time (ms, sorted).
async fn ceiling(
    m: Arc<MatrixUser>,
    room: &str,
    tag: &str,
    n: usize,
    window: usize,
) -> (f64, Vec<f64>) {
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(window));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let (m, path) = (
            m.clone(),
            format!(
                "/_matrix/client/v3/rooms/{}/send/m.room.message/{tag}-{i}",
                seg(room)
            ),
        );
        let body = json!({"msgtype": "m.text", "body": format!("{tag}-{i}")});
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let v = m.call(reqwest::Method::PUT, &path, Some(body)).await;
            assert!(v["event_id"].is_string(), "sent: {v}");
            drop(permit);
            t.elapsed().as_secs_f64() * 1000.0
        }));
    }
    let mut lat = Vec::with_capacity(n);
    for t in tasks {
        lat.push(t.await.expect("send task"));
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    (n as f64 / start.elapsed().as_secs_f64(), lat)
}

/// The bodies starting with `tag-` in the room, oldest first.
async fn read_back(m: &MatrixUser, room: &str, tag: &str, n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let token = from
            .as_ref()
            .map(|t| format!("&from={t}"))
            .unwrap_or_default();
        let v = m
            .call(
                reqwest::Method::GET,
                &format!(
                    "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100{token}",
                    seg(room)
                ),
                None,
            )
            .await;
        let chunk = v["chunk"].as_array().cloned().unwrap_or_default();
        for e in &chunk {
            if let Some(i) = e["content"]["body"]
                .as_str()
                .and_then(|b| b.strip_prefix(&format!("{tag}-")))
                .and_then(|i| i.parse().ok())
            {
                out.push(i);
            }
        }
        from = v["end"].as_str().map(str::to_string);
        if chunk.is_empty() || from.is_none() || out.len() >= n {
            break;
        }
    }
    out.reverse();
    out
}

#[tokio::main]
async fn main() {
    client::init_log();
    let client::Args {
        c2s,
        comp,
        secret,
        n,
        rounds,
    } = client::Args::parse(300);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));

    // Causeway's registration, then Synapse with it
    let dir = tempfile::tempdir().expect("tempdir");
    let http = format!("127.0.0.1:{}", free_port());
    let hs_port = free_port();
    let hs = format!("http://127.0.0.1:{hs_port}");
    let reg_path = dir.path().join("registration.yaml");
    let mcfg = causeway_matrix::MatrixConfig {
        homeserver_url: hs.clone(),
        server_name: "localhost".into(),
        registration: reg_path.clone(),
        ..causeway_matrix::MatrixConfig::default()
    };
    let reg = causeway_matrix::Registration::generate(&mcfg, &format!("http://{http}"));
    std::fs::write(&reg_path, reg.to_yaml()).expect("registration");
    let synapse_dir = dir.path().join("synapse");
    let out = std::process::Command::new(root.join("scripts/start-synapse.sh"))
        .arg(&synapse_dir)
        .env("PORT", hs_port.to_string())
        .env("USERS", format!("alice:{PASSWORD}"))
        .env("APPSERVICE_FILE", &reg_path)
        .env("LOG_LEVEL", "WARNING")
        .output()
        .expect("start-synapse.sh");
    assert!(
        out.status.success(),
        "synapse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stop_synapse = || {
        let _ = std::process::Command::new(root.join("scripts/stop.sh"))
            .arg(synapse_dir.join("synapse.pid"))
            .status();
    };

    let cfg_path = dir.path().join("causeway.toml");
    std::fs::write(
        &cfg_path,
        client::config_head(
            comp,
            &secret,
            dir.path(),
            &[("matrix.localhost", "matrix")],
            &http,
            "warn",
        ) + &format!(
            "[bridge]\nhistory_on_join = 0\n\
             [networks.matrix]\nhomeserver_url = \"{hs}\"\nserver_name = \"localhost\"\nregistration = \"{}\"\n",
            reg_path.display()
        ),
    )
    .expect("config");
    let config = causeway::config::Config::load(&cfg_path).expect("config loads");
    let nets = causeway::networks::build(&config).expect("networks");
    let shutdown = CancellationToken::new();
    let gw_shutdown = shutdown.clone();
    let gw = std::thread::spawn(move || {
        causeway::runtime(config.runtime.worker_threads)
            .expect("runtime")
            .block_on(causeway::run_with(config, nets, gw_shutdown))
    });
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    // alice and her room
    let alice = Arc::new(MatrixUser::login(&hs, "alice").await);
    let created = alice
        .call(
            reqwest::Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(json!({"preset": "public_chat", "room_alias_name": "bench", "name": "Bench"})),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_string();

    // the XMPP client finds the room by its alias and joins
    let mut c = login(c2s).await;
    c.send(&el("<iq xmlns='jabber:client' type='set' id='gw' to='matrix.localhost'><query xmlns='jabber:iq:gateway'><prompt>#bench:localhost</prompt></query></iq>")).await.expect("gateway");
    let jid = loop {
        let e = next(&mut c).await;
        if e.attr("id") == Some("gw") {
            let q = e
                .get_child("query", "jabber:iq:gateway")
                .expect("gateway answer");
            break q
                .children()
                .find(|x| x.name() == "jid")
                .expect("jid")
                .text();
        }
    };
    c.send(&el(&format!("<presence xmlns='jabber:client' id='join' to='{jid}/Bench'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"))).await.expect("join");
    while next(&mut c).await.attr("id") != Some("join") {}
    to_network(&mut c, &jid, "warm-causeway", 20, WINDOW).await;
    ceiling(alice.clone(), &room, "warm-ceiling", 20, WINDOW).await;

    println!(
        "{:<10} {:>6} {:>6} {:>9} {:>8} {:>8} {:>8}",
        "target", "window", "msgs", "msg/s", "p50 ms", "p99 ms", "ordered"
    );
    let (mut ratios, mut ratios1, mut all_ordered) = (Vec::new(), Vec::new(), true);
    let (mut added50, mut added99) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (ceil, _) = ceiling(alice.clone(), &room, &format!("c{round}"), n, WINDOW).await;
        println!(
            "{:<10} {WINDOW:>6} {n:>6} {ceil:>9.1} {:>8} {:>8} {:>8}",
            "ceiling", "-", "-", "-"
        );
        let (ceil1, lat1) = ceiling(alice.clone(), &room, &format!("d{round}"), n / 3, 1).await;
        let (c50, c99) = (pct(&lat1, 0.5), pct(&lat1, 0.99));
        println!(
            "{:<10} {:>6} {:>6} {ceil1:>9.1} {c50:>8.1} {c99:>8.1} {:>8}",
            "ceiling",
            1,
            n / 3,
            "-"
        );
        let tag = format!("x{round}");
        let rate = to_network(&mut c, &jid, &tag, n, WINDOW).await;
        let order = read_back(&alice, &room, &tag, n).await;
        let ordered = order == (0..n).collect::<Vec<_>>();
        all_ordered &= ordered;
        println!(
            "{:<10} {WINDOW:>6} {n:>6} {rate:>9.1} {:>8} {:>8} {ordered:>8}",
            "causeway", "-", "-"
        );
        let (_, lat) = to_network_timed(&mut c, &jid, &format!("y{round}"), n / 3, 1).await;
        let (x50, x99) = (pct(&lat, 0.5), pct(&lat, 0.99));
        println!(
            "{:<10} {:>6} {:>6} {:>9} {x50:>8.1} {x99:>8.1} {:>8}",
            "causeway",
            1,
            n / 3,
            "-",
            "-"
        );
        ratios.push(rate / ceil);
        ratios1.push(rate / ceil1);
        added50.push(x50 - c50);
        added99.push(x99 - c99);
    }
    println!("median of {rounds} rounds (paired within each round):");
    println!(
        "  XMPP -> Matrix: causeway / ceiling at window {WINDOW}: {:.2}; / ceiling at window 1: {:.2} (aim >= 0.9)",
        median(ratios),
        median(ratios1)
    );
    println!(
        "  latency at window 1 added by Causeway (client -> Prosody -> Causeway -> Synapse and back, against a client -> Synapse): p50 {:.1} ms, p99 {:.1} ms",
        median(added50),
        median(added99)
    );
    println!("  every message once, in order: {all_ordered}");
    shutdown.cancel();
    let _ = gw.join();
    stop_synapse();
}

/// The allocator the `causeway` binary uses (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
