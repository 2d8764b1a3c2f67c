//! The component link against a real Prosody: a wrong secret is reported clearly with
//! backoff; a server crash turns /health unhealthy, and Causeway reconnects by itself.

mod common;
use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_one_clear_line_per_attempt() {
    let server = Server::start(Kind::Prosody);
    let http = format!("127.0.0.1:{}", free_port());
    server.config("sqlite::memory:", &http);
    let path = server.dir.path().join("causeway.toml");
    let text = std::fs::read_to_string(&path)
        .expect("config")
        .replace(SECRET, "not-the-secret");
    std::fs::write(&path, text).expect("write");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_causeway"))
        .args(["run", "--config"])
        .arg(&path)
        .env("CAUSEWAY_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("causeway binary");
    tokio::time::sleep(Duration::from_secs(4)).await;
    child.start_kill().expect("kill");
    let out = child.wait_with_output().await.expect("output");
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // (the spaces service's own link is refused the same way, on its own schedule)
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("wrong component secret") && !l.contains("spaces."))
        .collect();
    // 0.5 s doubling (with jitter): 3 to 5 attempts in 4 s, not a retry storm.
    assert!(
        (2..=6).contains(&refusals.len()),
        "expected a few clear refusals, got:\n{log}"
    );
    assert!(
        refusals
            .iter()
            .all(|l| l.contains("not-authorized") && l.contains(DOMAIN)),
        "{log}"
    );
    assert!(
        !log.contains("not-the-secret"),
        "the secret leaked into the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_server_and_the_link_comes_back() {
    let server = Server::start(Kind::Prosody);
    let gw = Gateway::start(&server, "sqlite::memory:").await;
    server.kill();
    gw.wait_healthy(false, Duration::from_secs(15)).await;
    server.launch();
    gw.wait_healthy(true, Duration::from_secs(30)).await;
    // and the gateway answers again after the reconnect
    let mut c = XmppClient::connect(&server, "juliet", "again").await;
    c.send_xml(&format!("<iq xmlns='jabber:client' type='get' id='v' to='{DOMAIN}'><query xmlns='jabber:iq:version'/></iq>")).await;
    let v = c
        .expect("version", SEC, |e| e.attr("id") == Some("v"))
        .await;
    assert!(String::from(&v).contains("Causeway"));
    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        metrics.contains("causeway_reconnects_total{domain=\"demo.localhost\"}"),
        "{metrics}"
    );
    gw.stop().await;
}

/// `causeway check-config` on this TOML: (success, everything it printed).
fn check_config(toml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("causeway.toml");
    std::fs::write(&path, toml).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_causeway"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("causeway binary");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

#[test]
fn check_config_names_every_bad_key() {
    let base = "[xmpp]\nserver = \"127.0.0.1:5347\"\n\
                [[xmpp.components]]\ndomain = \"demo.localhost\"\nnetwork = \"demo\"\n\
                [networks.demo]\n";
    // an unknown key and a missing secret: both reported, in one pass
    let (ok, text) = check_config(&base.replace("[xmpp]\n", "[xmpp]\ncolour = \"blue\"\n"));
    assert!(!ok, "a bad config must fail: {text}");
    assert!(text.contains("xmpp.colour: unknown key"), "{text}");
    assert!(
        text.contains("xmpp.components[0].secret: missing"),
        "both problems in one pass: {text}"
    );
    // the same with a secret is fine
    let (ok, text) =
        check_config(&base.replace("network = \"demo\"", "network = \"demo\"\nsecret = \"s\""));
    assert!(ok, "{text}");
}
