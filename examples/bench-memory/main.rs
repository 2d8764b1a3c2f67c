//! Memory at scale (run by scripts/bench-memory, not a test): the `causeway` binary bridging
//! one Discord guild (the test kit's fake Discord, in this process) with PUPPETS members and
//! PORTALS text channels, its SQLite store holding ROWS message rows. Causeway runs as its
//! own process, so its RSS is its own (the fake and the client live here).
//!
//! Phases, each followed by Causeway's RSS and peak RSS (VmHWM):
//! 1. start with the guild cached (GUILD_CREATE, then every member in GUILD_MEMBERS_CHUNKs);
//! 2. an admin links the guild: one portal per channel;
//! 3. restart with ROWS message rows seeded over the portals (time to the handshake);
//! 4. every channel gets messages from 10 members each, until all PUPPETS have spoken: every
//!    portal is live (its task, occupants, caches) and every member is a puppet;
//! 5. an XMPP client joins JOINED rooms (each sends it the room's occupants);
//! 6. PER_PORTAL more messages in every channel (the portals' caches fill);
//! 7. 5 s idle.
//!
//!   bench-memory C2S_PORT COMPONENT_PORT SECRET CAUSEWAY_BIN [PUPPETS] [PORTALS] [ROWS] [PER_PORTAL] [JOINED]

#[path = "../bench/client.rs"]
mod client;

use client::{el, login, next, Client};
use fake_discord::{FakeDiscord, Options, Post};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The budget the brief sets for 10k puppets, 1k portals and 1M message rows.
const BUDGET_MIB: f64 = 150.0;

struct Args {
    c2s: u16,
    comp: u16,
    secret: String,
    bin: PathBuf,
    puppets: usize,
    portals: usize,
    rows: usize,
    per_portal: usize,
    joined: usize,
}

fn args() -> Args {
    let a: Vec<String> = std::env::args().collect();
    let num = |i: usize, default: usize| {
        a.get(i)
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    if a.len() < 5 {
        eprintln!("usage: bench-memory C2S_PORT COMPONENT_PORT SECRET CAUSEWAY_BIN [PUPPETS] [PORTALS] [ROWS] [PER_PORTAL] [JOINED]");
        std::process::exit(2);
    }
    Args {
        c2s: a[1].parse().expect("c2s port"),
        comp: a[2].parse().expect("component port"),
        secret: a[3].clone(),
        bin: PathBuf::from(&a[4]),
        puppets: num(5, 10_000),
        portals: num(6, 1_000),
        rows: num(7, 1_000_000),
        per_portal: num(8, 300),
        joined: num(9, 20),
    }
}

/// A field of /proc/PID/status in MiB (VmRSS, VmHWM).
fn status_mib(pid: u32, field: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU seconds of a process so far.
fn cpu_secs(pid: u32) -> f64 {
    client::stat_cpu_secs(format!("/proc/{pid}/stat").as_ref())
}

struct Gateway {
    child: tokio::process::Child,
    pid: u32,
    log: PathBuf,
}

impl Gateway {
    /// Start the binary; returns once its component stream is up, with the time it took.
    async fn start(bin: &Path, cfg: &Path, log: &Path) -> (Gateway, Duration) {
        let out = std::fs::File::create(log).expect("log file");
        let start = Instant::now();
        let child = tokio::process::Command::new(bin)
            .args(["run", "-c"])
            .arg(cfg)
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("causeway starts");
        let pid = child.id().expect("pid");
        let gw = Gateway {
            child,
            pid,
            log: log.to_path_buf(),
        };
        while !gw.log_has("component connected") {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no handshake in 30 s:\n{}",
                gw.log_text()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let took = start.elapsed();
        (gw, took)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_has(&self, what: &str) -> bool {
        self.log_text().contains(what)
    }

    /// SIGTERM, as an admin stops it; waits for the exit.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Print one phase: Causeway's RSS and peak, and the time and CPU it took.
fn report(phase: &str, gw: &Gateway, t0: Instant, cpu0: f64) {
    println!(
        "{phase:<58} {:>8.1} {:>9.1} {:>7.1} {:>8.1}",
        status_mib(gw.pid, "VmRSS"),
        status_mib(gw.pid, "VmHWM"),
        t0.elapsed().as_secs_f64(),
        cpu_secs(gw.pid) - cpu0
    );
}

async fn count(db: &sqlx::SqlitePool, table: &str) -> i64 {
    // (sqlx takes only literal SQL)
    let sql = match table {
        "puppet" => "SELECT COUNT(*) FROM puppet",
        _ => "SELECT COUNT(*) FROM message",
    };
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap_or(0)
}

/// Wait until `table` holds at least `n` rows (Causeway has taken every message posted).
async fn wait_rows(db: &sqlx::SqlitePool, table: &str, n: usize, gw: &Gateway) {
    let start = Instant::now();
    loop {
        let have = count(db, table).await;
        if have >= n as i64 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "{table}: {have} of {n} rows after 30 min"
        );
        assert!(
            std::fs::metadata(format!("/proc/{}", gw.pid)).is_ok(),
            "causeway exited:\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `rows` message rows spread over the portals, as a long history would leave them.
async fn seed(db: &sqlx::SqlitePool, rows: usize) {
    let mut tx = db.begin().await.expect("seed tx");
    sqlx::query(
        "CREATE TEMP TABLE p AS SELECT ROW_NUMBER() OVER (ORDER BY id) - 1 AS k, id FROM portal",
    )
    .execute(&mut *tx)
    .await
    .expect("portal ids");
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1)
         INSERT INTO message (portal_id, remote_id, part, stanza_id, sender, sender_nick, body, sent_at)
         SELECT p.id, 'seed' || i, 0, 'seed' || i, 'u' || (i % 997), 'User ' || (i % 997),
                'a seeded message body of ordinary length, number ' || i, 1700000000000 + i
         FROM n JOIN p ON p.k = i % (SELECT COUNT(*) FROM p)",
    )
    .bind(rows as i64)
    .execute(&mut *tx)
    .await
    .expect("seed rows");
    tx.commit().await.expect("seed commit");
}

/// Join `room` as Bench; returns how many occupant presences came before the self-presence.
async fn join(c: &mut Client, room: &str, id: &str) -> usize {
    use futures::SinkExt;
    c.send(&el(&format!("<presence xmlns='jabber:client' id='{id}' to='{room}/Bench'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"))).await.expect("join");
    let mut occupants = 0;
    loop {
        let e = next(c).await;
        if e.name() == "presence" && e.attr("id") == Some(id) {
            assert_ne!(
                e.attr("type"),
                Some("error"),
                "join refused: {}",
                String::from(&e)
            );
            return occupants;
        }
        if e.name() == "presence" && e.attr("from").is_some_and(|f| f.starts_with(room)) {
            occupants += 1;
        }
    }
}

#[tokio::main]
async fn main() {
    client::init_log();
    let a = args();
    let fake = FakeDiscord::start(Options::default())
        .await
        .expect("fake discord");
    let guild = fake.add_guild("Big Guild");
    let channels: Vec<String> = (0..a.portals)
        .map(|i| fake.add_channel(&guild, &format!("channel-{i}"), 0, None))
        .collect();
    let users: Vec<String> = (0..a.puppets)
        .map(|i| {
            let u = fake.add_user(&format!("user{i}"), Some(&format!("Member {i}")));
            fake.add_member(&guild, &u, None);
            u
        })
        .collect();

    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("cw.db");
    let cfg = dir.path().join("causeway.toml");
    std::fs::write(
        &cfg,
        client::config_head(
            a.comp,
            &a.secret,
            dir.path(),
            &[("discord.localhost", "discord")],
            "",
            "info",
        ) + &format!(
            "[bridge]\nadmins = [\"bench@localhost\"]\nhistory_on_join = 0\n\
             [networks.discord]\ntoken = \"{token}\"\napi_url = \"{api}\"\ncdn_url = \"{cdn}\"\nmembers_intent = true\n",
            token = fake.token(),
            api = fake.api_url(),
            cdn = fake.cdn_url(),
        ),
    )
    .expect("config");
    let log = dir.path().join("causeway.log");

    println!(
        "{} members, {} channels, {} seeded rows, {} more messages per channel, client in {} rooms",
        a.puppets, a.portals, a.rows, a.per_portal, a.joined
    );
    println!(
        "{:<58} {:>8} {:>9} {:>7} {:>8}",
        "phase", "RSS MiB", "peak MiB", "secs", "CPU s"
    );
    let (gw, took) = Gateway::start(&a.bin, &cfg, &log).await;
    let (t0, cpu0) = (Instant::now(), 0.0);
    // the guild arrives with the gateway's READY; give it the time to be cached
    while fake.connected() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    report(
        &format!(
            "1. started, guild cached (handshake {} ms)",
            took.as_millis()
        ),
        &gw,
        t0,
        cpu0,
    );

    let (t0, cpu0) = (Instant::now(), cpu_secs(gw.pid));
    let mut c = login(a.c2s).await;
    {
        use futures::SinkExt;
        c.send(&el(&format!("<iq xmlns='jabber:client' type='set' id='link' to='discord.localhost'><command xmlns='http://jabber.org/protocol/commands' node='link-space' action='complete' sessionid='s'><x xmlns='jabber:x:data' type='submit'><field var='space'><value>{guild}</value></field></x></command></iq>"))).await.expect("link");
    }
    loop {
        let e = next(&mut c).await;
        if e.attr("id") == Some("link") {
            assert_eq!(e.attr("type"), Some("result"), "link: {}", String::from(&e));
            break;
        }
    }
    drop(c);
    report(
        &format!("2. guild linked: {} portals", a.portals),
        &gw,
        t0,
        cpu0,
    );
    gw.stop().await;

    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("store");
    let seeded = Instant::now();
    seed(&db, a.rows).await;
    let seed_secs = seeded.elapsed().as_secs_f64();
    let (gw, took) = Gateway::start(&a.bin, &cfg, &log).await;
    let (t0, cpu0) = (Instant::now(), cpu_secs(gw.pid));
    tokio::time::sleep(Duration::from_secs(3)).await;
    report(
        &format!(
            "3. restarted, {} rows (seeded in {seed_secs:.0} s); handshake {} ms",
            a.rows,
            took.as_millis()
        ),
        &gw,
        t0,
        cpu0,
    );

    // 4. every member speaks once, ten per channel: all portals live, all puppets known
    let (t0, cpu0) = (Instant::now(), cpu_secs(gw.pid));
    let base = a.rows;
    for (i, u) in users.iter().enumerate() {
        let ch = &channels[i % channels.len()];
        fake.post(ch, u, Post::text(format!("hello from member {i}")));
    }
    wait_rows(&db, "message", base + users.len(), &gw).await;
    report(
        &format!(
            "4. {} portals live, {} puppets spoke",
            a.portals,
            count(&db, "puppet").await
        ),
        &gw,
        t0,
        cpu0,
    );

    // 5. a client in JOINED rooms
    let (t0, cpu0) = (Instant::now(), cpu_secs(gw.pid));
    let mut c = login(a.c2s).await;
    let mut seen = 0;
    for (i, ch) in channels.iter().take(a.joined).enumerate() {
        seen += join(&mut c, &format!("{ch}@discord.localhost"), &format!("j{i}")).await;
    }
    report(
        &format!(
            "5. client in {} rooms ({seen} occupants shown)",
            a.joined.min(channels.len())
        ),
        &gw,
        t0,
        cpu0,
    );

    // 6. PER_PORTAL more messages in every channel, round by round
    let (t0, cpu0) = (Instant::now(), cpu_secs(gw.pid));
    let reader = tokio::spawn(async move {
        // keep reading the joined rooms' traffic, as a client would
        loop {
            let _ = next(&mut c).await;
        }
    });
    for round in 0..a.per_portal {
        for (i, ch) in channels.iter().enumerate() {
            let u = &users[(round * channels.len() + i) % users.len()];
            fake.post(
                ch,
                u,
                Post::text(format!(
                    "message {round} in channel {i}: an ordinary line of chat"
                )),
            );
        }
    }
    let total = base + users.len() + a.per_portal * channels.len();
    wait_rows(&db, "message", total, &gw).await;
    report(
        &format!("6. {} more messages per portal", a.per_portal),
        &gw,
        t0,
        cpu0,
    );
    let (t0, cpu0) = (Instant::now(), cpu_secs(gw.pid));
    tokio::time::sleep(Duration::from_secs(5)).await;
    report("7. idle 5 s", &gw, t0, cpu0);
    let rss = status_mib(gw.pid, "VmRSS");
    let peak = status_mib(gw.pid, "VmHWM");
    println!(
        "causeway RSS {rss:.1} MiB, peak {peak:.1} MiB (budget {BUDGET_MIB:.0} MB with 10k puppets, 1k portals, 1M rows)"
    );
    reader.abort();
    gw.stop().await;
}

/// The allocator the `causeway` binary uses (src/main.rs), for the fake and the client here.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
