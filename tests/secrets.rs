//! Secrets at rest (issue 16): what Causeway keeps is readable by its user only (the store,
//! its side files, the sealing key, copied media), and a registered user's network password
//! is sealed in the store: the database file does not hold it, and a restart still opens it.

mod common;
use common::*;

const REGISTER: &str = "jabber:iq:register";
const PASSWORD_MARK: &str = "pw-SECRET-77";

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_sealed_and_files_private() {
    let server = Server::start(Kind::Prosody);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("cw.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let gw = Gateway::start(&server, &url).await;
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    let form = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='username'><value>jules</value></field><field var='password'><value>{PASSWORD_MARK}</value></field></x>"
    );
    let done = iq(
        &mut juliet,
        "r1",
        "set",
        DOMAIN,
        &format!("<query xmlns='{REGISTER}'>{form}</query>"),
    )
    .await;
    assert_eq!(done.attr("type"), Some("result"), "{}", String::from(&done));
    let gw = gw.restart(&server, &url).await;
    // the login is opened again after the restart (with the key file)
    let again = iq(
        &mut juliet,
        "r2",
        "get",
        DOMAIN,
        &format!("<query xmlns='{REGISTER}'/>"),
    )
    .await;
    assert!(
        String::from(&again).contains("<registered"),
        "{}",
        String::from(&again)
    );
    gw.stop().await;

    // no file of the store holds the password
    let key = dir.path().join("cw.db.key");
    assert!(key.exists(), "the sealing key beside the store");
    for side in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("cw.db{side}"));
        if let Ok(bytes) = std::fs::read(&p) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(PASSWORD_MARK),
                "{} holds the password",
                p.display()
            );
        }
    }
    #[cfg(unix)]
    {
        for side in ["", "-wal", "-shm", ".key"] {
            let p = dir.path().join(format!("cw.db{side}"));
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
        // (the test kit's media directory: created by Causeway)
        let media = server.dir.path().join("media");
        assert_eq!(mode(&media), 0o700, "{}", media.display());
    }
    juliet.close().await;
}
