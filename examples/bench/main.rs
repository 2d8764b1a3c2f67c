//! The bridge-cost benchmark (run by scripts/bench, not a test).
//!
//! One XMPP client logs in over c2s and sends messages to a room; every message comes back
//! twice: reflected, then answered ("echo: ..."). The round trip is send -> answer.
//! - baseline: a trivial echo component on the same server that reflects and answers each
//!   message at once (the same stanza count as Causeway's room);
//! - echo+ids: the same, with the stanza-id and occupant-id Causeway adds (for reference);
//! - causeway: Causeway with the demo network (store on SQLite, outbox, portal), whose bot
//!   answers every message, in plain text like the baselines (BENCH_REPLIES=1: with a
//!   XEP-0461 reply quoting it, as the demo's bot does by default).
//!
//! Rounds alternate between the two, medians are printed, with the ratios the budgets ask for.
//! BENCH_ONLY=<target> runs one target; BENCH_WINDOW=<n> sets the messages in flight (32).
//!
//!   bench C2S_PORT COMPONENT_PORT SECRET [MESSAGES] [ROUNDS]

use causeway_demo::{DemoConfig, DemoNetwork};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::xmlstream::Timeouts;

mod client;
use client::{el, login, median, next, Client};

/// Messages in flight for the throughput rows; BENCH_WINDOW=n (n > 1) sets another.
const WINDOW: usize = 32;

fn wide_window() -> usize {
    std::env::var("BENCH_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|w| *w > 1)
        .unwrap_or(WINDOW)
}

/// The baseline: reflect and answer every groupchat message, nothing else. With `ids`, each
/// stanza also carries the stanza-id and occupant-id a MUC must add (Causeway's payload), to
/// show how much of the difference is the server's cost of those elements.
async fn echo_component(port: u16, secret: String, domain: &'static str, ids: bool) {
    use tokio_xmpp::parsers::stanza::Stanza;
    let mut comp = tokio_xmpp::Component::new_plaintext(
        domain,
        &secret,
        tokio_xmpp::connect::DnsConfig::addr(&format!("127.0.0.1:{port}")),
        Timeouts::default(),
    )
    .await
    .expect("echo component");
    while let Some(st) = comp.next().await {
        let Stanza::Message(m) = st else { continue };
        let (Some(from), Some(to)) = (m.from.clone(), m.to.clone()) else {
            continue;
        };
        let Some((_, body)) = m.bodies.iter().next() else {
            continue;
        };
        let id = m.id.as_ref().map(|i| i.0.clone()).unwrap_or_default();
        for (nick, text, mid) in [
            ("Bench", body.clone(), id.clone()),
            ("Echo", format!("echo: {body}"), format!("e{id}")),
        ] {
            let extra = if ids {
                format!("<stanza-id xmlns='urn:xmpp:sid:0' id='{mid}' by='{to}'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='0123456789abcdef0123456789abcdef'/>")
            } else {
                String::new()
            };
            let xml = format!(
                "<message xmlns='jabber:component:accept' type='groupchat' from='{to}/{nick}' to='{from}' id='{mid}'><body>{text}</body>{extra}</message>"
            );
            if let Ok(s) = Stanza::try_from(el(&xml)) {
                let _ = comp.feed(s).await;
            }
        }
        let _ = comp.flush().await;
    }
}

struct Run {
    rate: f64,
    p50: f64,
    p99: f64,
    /// XMPP server CPU time per message, in microseconds (0 when its pid is unknown).
    server_us: f64,
    /// The bridge's CPU time per message (the echo component's thread, or Causeway's
    /// threads with SQLite's), in microseconds.
    bridge_us: f64,
    /// Of that, SQLite's threads (Causeway's store).
    store_us: f64,
}

/// The threads each target's bridge runs on (their CPU time is charged to it).
fn bridge_threads(target: &str) -> &'static [&'static str] {
    match target {
        "causeway" => &["causeway", "sqlx-sqlite"],
        _ => &["echo"],
    }
}

/// CPU time of a process so far, in seconds.
fn cpu_secs(pid: Option<u32>) -> f64 {
    pid.map_or(0.0, |p| {
        client::stat_cpu_secs(format!("/proc/{p}/stat").as_ref())
    })
}

/// CPU time of this process's threads whose name starts with one of `names`, in seconds.
fn threads_cpu_secs(names: &[&str]) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| names.iter().any(|n| c.starts_with(n)))
        })
        .map(|t| client::stat_cpu_secs(&t.path().join("stat")))
        .sum()
}

/// Send `n` messages to `room` with `window` in flight; time each until its answer.
async fn run(
    c: &mut Client,
    room: &str,
    tag: &str,
    n: usize,
    window: usize,
    server: Option<u32>,
    bridge: &[&str],
) -> Run {
    let cpu0 = cpu_secs(server);
    let bridge0 = threads_cpu_secs(bridge);
    // SQLite's share, for Causeway only (the echo components have no store)
    let with_store = bridge.contains(&"sqlx-sqlite");
    let store_cpu = || {
        if with_store {
            threads_cpu_secs(&["sqlx-sqlite"])
        } else {
            0.0
        }
    };
    let store0 = store_cpu();
    let mut sent_at: HashMap<String, Instant> = HashMap::new();
    let mut lat = Vec::with_capacity(n);
    let mut next_i = 0;
    let start = Instant::now();
    while lat.len() < n {
        while next_i < n && sent_at.len() < window {
            let token = format!("{tag}-{next_i}");
            let msg = el(&format!("<message xmlns='jabber:client' type='groupchat' id='{token}' to='{room}'><body>{token}</body></message>"));
            c.feed(&msg).await.expect("send");
            sent_at.insert(token, Instant::now());
            next_i += 1;
        }
        SinkExt::<&Element>::flush(c).await.expect("flush");
        let e = next(c).await;
        let body = e.children().find(|x| x.name() == "body").map(|b| b.text());
        // "echo: <token>", after a quoted fallback when the bot answers with a XEP-0461 reply
        let answer = body.as_deref().and_then(|b| b.rsplit('\n').next());
        if let Some(token) = answer.and_then(|b| b.strip_prefix("echo: ")) {
            if let Some(t) = sent_at.remove(token) {
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    let server_us = (cpu_secs(server) - cpu0) * 1e6 / n as f64;
    let bridge_us = (threads_cpu_secs(bridge) - bridge0) * 1e6 / n as f64;
    let store_us = (store_cpu() - store0) * 1e6 / n as f64;
    Run {
        rate: n as f64 / secs,
        p50: pct(0.5),
        p99: pct(0.99),
        server_us,
        bridge_us,
        store_us,
    }
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
    } = client::Args::parse(5000);

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = dir.path().join("causeway.toml");
    std::fs::write(
        &cfg_path,
        client::config_head(
            comp,
            &secret,
            dir.path(),
            &[("demo.localhost", "demo")],
            "",
            "warn",
        ) + "[networks.demo]\nrooms = [\"lobby\"]\n",
    )
    .expect("config");
    let config = causeway::config::Config::load(&cfg_path).expect("config loads");
    // BENCH_REPLIES=1: the bot answers with a XEP-0461 reply (quote and markup), as the
    // demo does, instead of plain text like the echo baselines.
    let replies = std::env::var("BENCH_REPLIES").is_ok_and(|v| v == "1");
    let (net, _demo) = DemoNetwork::new(DemoConfig {
        rooms: vec!["lobby".into()],
        bot_replies: replies,
        ..DemoConfig::default()
    });
    let shutdown = CancellationToken::new();
    // Causeway runs on its own runtime, as the `causeway` binary does, not on the client's.
    let gw_shutdown = shutdown.clone();
    let gw = std::thread::Builder::new()
        .name("causeway".into())
        .spawn(move || {
            causeway::runtime(config.runtime.worker_threads)
                .expect("runtime")
                .block_on(causeway::run_with(config, vec![Arc::new(net)], gw_shutdown))
        })
        .expect("causeway thread");
    // The echo components on a thread of their own too (its CPU time is the baseline's).
    let echo_secret = secret.clone();
    std::thread::Builder::new()
        .name("echo".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("echo runtime")
                .block_on(async {
                    tokio::join!(
                        echo_component(comp, echo_secret.clone(), "echo.localhost", false),
                        echo_component(comp, echo_secret, "echoids.localhost", true)
                    )
                })
        })
        .expect("echo thread");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The XMPP server's pid, to charge its CPU time to each target (BENCH_SERVER_PID).
    let server: Option<u32> = std::env::var("BENCH_SERVER_PID")
        .ok()
        .and_then(|p| p.trim().parse().ok());
    let mut c = login(c2s).await;
    c.send(&el("<presence xmlns='jabber:client' id='join' to='lobby@demo.localhost/Bench'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>")).await.expect("join");
    while next(&mut c).await.attr("id") != Some("join") {}
    let wide = wide_window();
    let targets = [
        ("echo", "lobby@echo.localhost"),
        ("echo+ids", "lobby@echoids.localhost"),
        ("causeway", "lobby@demo.localhost"),
    ];
    // BENCH_ONLY=name runs one target (e.g. to trace the server while it runs).
    let only = std::env::var("BENCH_ONLY").ok();
    let targets: Vec<_> = targets
        .into_iter()
        .filter(|(n, _)| only.as_deref().is_none_or(|o| o == *n))
        .collect();
    for (name, room) in &targets {
        let warm = format!("warm-{name}");
        run(&mut c, room, &warm, 300, wide, server, bridge_threads(name)).await;
    }

    println!(
        "{:<9} {:>6} {:>6} {:>9} {:>8} {:>8} {:>14} {:>14}",
        "target", "window", "msgs", "msg/s", "p50 ms", "p99 ms", "server us/msg", "bridge us/msg"
    );
    let mut results: HashMap<(&str, usize), Vec<Run>> = HashMap::new();
    for round in 0..rounds {
        for &(name, room) in &targets {
            for (window, count) in [(wide, n), (1, n / 10)] {
                let r = run(
                    &mut c,
                    room,
                    &format!("{name}-{round}-{window}"),
                    count,
                    window,
                    server,
                    bridge_threads(name),
                )
                .await;
                println!(
                    "{name:<9} {window:>6} {count:>6} {:>9.0} {:>8.2} {:>8.2} {:>14.0} {:>14.0}",
                    r.rate, r.p50, r.p99, r.server_us, r.bridge_us
                );
                results.entry((name, window)).or_default().push(r);
            }
        }
    }
    if targets.len() < 3 {
        shutdown.cancel();
        let _ = gw.join();
        return;
    }
    let med = |name: &str, window: usize, f: fn(&Run) -> f64| {
        median(results[&(name, window)].iter().map(f).collect())
    };
    // Ratios and differences are taken within each round (the two targets ran back to back,
    // under the same machine load), then the median over rounds.
    let paired = |a: &str, b: &str, window: usize, f: fn(&Run, &Run) -> f64| {
        let (xs, ys) = (&results[&(a, window)], &results[&(b, window)]);
        median(xs.iter().zip(ys).map(|(x, y)| f(x, y)).collect())
    };
    let ratio = paired("causeway", "echo", wide, |c, e| c.rate / e.rate);
    let ratio_ids = paired("causeway", "echo+ids", wide, |c, e| c.rate / e.rate);
    let added_p99 = paired("causeway", "echo", 1, |c, e| c.p99 - e.p99);
    let added_p50 = paired("causeway", "echo", 1, |c, e| c.p50 - e.p50);
    println!("median of {rounds} rounds (ratios and added latency paired within each round):");
    println!("  throughput (window {wide}): echo {:.0} msg/s, causeway {:.0} msg/s, ratio {ratio:.2} (budget >= 0.8)", med("echo", wide, |r| r.rate), med("causeway", wide, |r| r.rate));
    println!(
        "  latency (window 1): echo p50 {:.2} p99 {:.2} ms, causeway p50 {:.2} p99 {:.2} ms",
        med("echo", 1, |r| r.p50),
        med("echo", 1, |r| r.p99),
        med("causeway", 1, |r| r.p50),
        med("causeway", 1, |r| r.p99)
    );
    println!(
        "  added by causeway: p50 {added_p50:.2} ms, p99 {added_p99:.2} ms (budget p99 <= 5 ms)"
    );
    let per_target = |f: fn(&Run) -> f64| {
        format!(
            "echo {:.0} us, echo+ids {:.0} us, causeway {:.0} us",
            med("echo", wide, f),
            med("echo+ids", wide, f),
            med("causeway", wide, f)
        )
    };
    println!(
        "  server CPU per message (window {wide}): {}",
        per_target(|r| r.server_us)
    );
    println!(
        "  bridge CPU per message (window {wide}): {} (of which SQLite's threads {:.0} us)",
        per_target(|r| r.bridge_us),
        med("causeway", wide, |r| r.store_us)
    );
    println!(
        "  for reference, echo with the same MUC payload (stanza-id, occupant-id): {:.0} msg/s, causeway/echo+ids {:.2}",
        med("echo+ids", wide, |r| r.rate),
        ratio_ids
    );
    shutdown.cancel();
    let _ = gw.join();
}

/// The allocator the `causeway` binary uses (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
