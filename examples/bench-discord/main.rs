//! The Discord adapter's own cost (run by scripts/bench-discord, not a test).
//!
//! One Causeway bridges two networks on the same XMPP server: the demo network (in memory)
//! and Discord, through the test kit's fake Discord (REST and gateway, in this process). In
//! alternating rounds, for each network:
//! - to the network: an XMPP client sends N messages to a room, W in flight; Causeway reflects
//!   each only after the network took it (a webhook post on Discord), so the rate is N over
//!   the time to the last reflection;
//! - from the network: N messages are posted remotely at once (injected into the demo network;
//!   posted on the fake, which sends MESSAGE_CREATE over its gateway), and the rate is N over
//!   the time until the client has them all, which must come in order.
//!
//! The Discord figures include the fake's own work (an HTTP server and a websocket in this
//! process); the ratios discord/demo, paired within each round, are the adapter's cost.
//!
//!   bench-discord C2S_PORT COMPONENT_PORT SECRET [MESSAGES] [ROUNDS]

#[path = "../bench/client.rs"]
mod client;

use causeway_api::Secret;
use causeway_demo::{DemoConfig, DemoNetwork};
use client::{el, login, median, next, to_network, Client};
use fake_discord::{FakeDiscord, Options, Post};
use futures::SinkExt;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_xmpp::minidom::Element;

const WINDOW: usize = 32;

fn body(e: &Element) -> Option<String> {
    e.children().find(|x| x.name() == "body").map(|b| b.text())
}

/// Wait for `n` bodies `tag-i` from `room`: messages/s since `start`, and whether in order.
async fn from_network(
    c: &mut Client,
    room: &str,
    tag: &str,
    n: usize,
    start: Instant,
) -> (f64, bool) {
    let prefix = format!("{tag}-");
    let mut seen = Vec::with_capacity(n);
    while seen.len() < n {
        let e = next(c).await;
        let from_room = e.attr("from").is_some_and(|f| f.starts_with(room));
        if let (true, Some(b)) = (from_room, body(&e)) {
            if let Some(i) = b
                .strip_prefix(&prefix)
                .and_then(|i| i.parse::<usize>().ok())
            {
                seen.push(i);
            }
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    (rate, seen.iter().enumerate().all(|(k, i)| k == *i))
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
    } = client::Args::parse(2000);

    let fake = FakeDiscord::start(Options::default())
        .await
        .expect("fake discord");
    let guild = fake.add_guild("Bench Guild");
    let channel = fake.add_channel(&guild, "bench", 0, None);
    let poster = fake.add_user("poster", Some("Poster"));
    fake.add_member(&guild, &poster, None);

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = dir.path().join("causeway.toml");
    std::fs::write(
        &cfg_path,
        client::config_head(
            comp,
            &secret,
            dir.path(),
            &[("demo.localhost", "demo"), ("discord.localhost", "discord")],
            "",
            "warn",
        ) + &format!(
            "[bridge]\nadmins = [\"bench@localhost\"]\nhistory_on_join = 0\n\
             [networks.demo]\nrooms = [\"lobby\"]\nbot_answers = false\n\
             [networks.discord]\ntoken = \"{}\"\napi_url = \"{}\"\ncdn_url = \"{}\"\n",
            fake.token(),
            fake.api_url(),
            fake.cdn_url(),
        ),
    )
    .expect("config");
    let config = causeway::config::Config::load(&cfg_path).expect("config loads");
    let (demo, handle) = DemoNetwork::new(DemoConfig {
        rooms: vec!["lobby".into()],
        bot_answers: false,
        ..DemoConfig::default()
    });
    let discord = causeway_discord::DiscordNetwork::new(causeway_discord::DiscordConfig {
        token: Some(Secret::new(fake.token())),
        api_url: fake.api_url(),
        cdn_url: fake.cdn_url(),
        ..causeway_discord::DiscordConfig::default()
    })
    .expect("discord config");
    let shutdown = CancellationToken::new();
    let gw_shutdown = shutdown.clone();
    let gw = std::thread::spawn(move || {
        causeway::runtime(config.runtime.worker_threads)
            .expect("runtime")
            .block_on(causeway::run_with(
                config,
                vec![Arc::new(demo), Arc::new(discord)],
                gw_shutdown,
            ))
    });
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let mut c = login(c2s).await;
    // link the guild (an admin command), then join both rooms
    c.send(&el(&format!("<iq xmlns='jabber:client' type='set' id='link' to='discord.localhost'><command xmlns='http://jabber.org/protocol/commands' node='link-space' action='complete' sessionid='s'><x xmlns='jabber:x:data' type='submit'><field var='space'><value>{guild}</value></field></x></command></iq>"))).await.expect("link");
    while next(&mut c).await.attr("id") != Some("link") {}
    let rooms = [
        ("demo", "lobby@demo.localhost".to_string()),
        ("discord", format!("{channel}@discord.localhost")),
    ];
    for (name, room) in &rooms {
        c.send(&el(&format!("<presence xmlns='jabber:client' id='join-{name}' to='{room}/Bench'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"))).await.expect("join");
        while next(&mut c).await.attr("id") != Some(format!("join-{name}").as_str()) {}
        to_network(&mut c, room, &format!("warm-{name}"), 200, WINDOW).await;
    }

    println!(
        "{:<8} {:<5} {:>6} {:>9} {:>8}",
        "network", "dir", "msgs", "msg/s", "ordered"
    );
    let mut out_ratio = Vec::new();
    let mut in_ratio = Vec::new();
    let mut all_ordered = true;
    for round in 0..rounds {
        let mut out = [0.0; 2];
        let mut inn = [0.0; 2];
        for (k, (name, room)) in rooms.iter().enumerate() {
            let tag = format!("out-{name}-{round}");
            out[k] = to_network(&mut c, room, &tag, n, WINDOW).await;
            println!("{name:<8} {:<5} {n:>6} {:>9.0} {:>8}", "out", out[k], "-");

            let tag = format!("in-{name}-{round}");
            let start = Instant::now();
            match *name {
                "demo" => {
                    let (h, tag) = (handle.clone(), tag.clone());
                    tokio::spawn(async move {
                        for i in 0..n {
                            h.inject_message("lobby", "poster", &format!("{tag}-{i}"))
                                .await;
                        }
                    });
                }
                _ => {
                    for i in 0..n {
                        fake.post(&channel, &poster, Post::text(format!("{tag}-{i}")));
                    }
                }
            }
            let (rate, ordered) = from_network(&mut c, room, &tag, n, start).await;
            all_ordered &= ordered;
            inn[k] = rate;
            println!("{name:<8} {:<5} {n:>6} {rate:>9.0} {ordered:>8}", "in");
        }
        out_ratio.push(out[1] / out[0]);
        in_ratio.push(inn[1] / inn[0]);
    }
    println!("median of {rounds} rounds (discord/demo paired within each round):");
    println!("  XMPP -> network: discord/demo {:.2}", median(out_ratio));
    println!("  network -> XMPP: discord/demo {:.2}", median(in_ratio));
    println!("  every message in order: {all_ordered}");
    shutdown.cancel();
    let _ = gw.join();
}

/// The allocator the `causeway` binary uses (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
