//! The conformance suite every adapter runs: `causeway_api::conformance_tests!(expr)` in the
//! adapter's tests, where `expr` is an async expression giving an `Arc<dyn Network>` whose
//! relay login is connected to a real or fake remote with at least one room.

use crate::*;
use std::time::Duration;

/// Fails (panics, as a test should) with a message that names the broken rule.
pub async fn run(network: Arc<dyn Network>) {
    let id = network.id();
    assert!(
        !id.as_str().is_empty()
            && id
                .as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "Network::id must be a non-empty lowercase ascii label, got {id:?}"
    );
    let caps = network.capabilities().clone();
    assert!(
        !caps.display_name.is_empty(),
        "Capabilities::display_name is empty"
    );
    assert!(caps.max_text_len > 0, "Capabilities::max_text_len is 0");

    let login = network
        .relay_login()
        .expect("conformance needs a relay login");
    assert!(
        !format!("{login:?}").contains(login.secrets.expose()) || login.secrets.is_empty(),
        "Debug of a LoginRecord shows its secret"
    );
    let (tx, mut rx) = mpsc::channel(1024);
    let session = network
        .connect(&login, EventSink::new(login.login.clone(), tx))
        .await
        .expect("connect with the relay login");

    let rooms = session.rooms().await.expect("rooms()");
    let room = rooms
        .first()
        .expect("the test remote must have a room")
        .clone();
    let info = session
        .room_info(&room.key)
        .await
        .expect("room_info of a listed room");
    assert_eq!(info.key, room.key, "room_info returns another room");
    let bogus = RoomKey::shared("no-such-room-conformance");
    match session.room_info(&bogus).await {
        Err(NetworkError::NotFound(_)) => {}
        other => panic!("room_info of an unknown room must be NotFound, got {other:?}"),
    }

    // A message comes back with a remote id; its echo, if any, carries our TxnId.
    let txn = TxnId::new("conformance-txn-1");
    let sent = session
        .send_message(OutgoingMessage {
            maybe_sent: false,
            room: room.key.clone(),
            txn: txn.clone(),
            content: Content::text("conformance hello"),
            reply_to: None,
            persona: Some(Persona {
                nick: "tester".into(),
                avatar_url: None,
                xmpp_user: "tester@example.org".into(),
            }),
        })
        .await
        .expect("send_message");
    assert!(!sent.ids.is_empty(), "Sent carries no remote id");
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(env)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if let RemoteEventKind::Message {
            id, txn: echo_txn, ..
        } = &env.event.kind
        {
            if sent.ids.contains(id) {
                assert_eq!(
                    echo_txn.as_ref(),
                    Some(&txn),
                    "an echo of our message lacks its TxnId"
                );
            }
        }
    }

    // History returns what was sent, oldest first.
    let history = session
        .history(&room.key, None, 1000)
        .await
        .expect("history");
    let pos = history.iter().position(
        |e| matches!(&e.kind, RemoteEventKind::Message { id, .. } if sent.ids.contains(id)),
    );
    assert!(pos.is_some(), "history does not hold the message just sent");
    let stamps: Vec<i64> = history.iter().map(|e| e.at).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "history is not oldest first"
    );
    if let Some(last) = sent.ids.last() {
        let after = session
            .history(&room.key, Some(last), 10)
            .await
            .expect("history after");
        assert!(
            after
                .iter()
                .all(|e| !matches!(&e.kind, RemoteEventKind::Message { id, .. } if id == last)),
            "history(after = X) must not return X"
        );
    }

    // Unsupported actions are refused as Unsupported, never silently dropped.
    let target = sent.ids[0].clone();
    let checks: [(bool, ActionKind); 3] = [
        (
            caps.edits,
            ActionKind::Edit {
                target: target.clone(),
                content: Content::text("x"),
                txn: TxnId::new("t2"),
            },
        ),
        (
            caps.reactions,
            ActionKind::ReactionAdd {
                target: target.clone(),
                emoji: "👍".into(),
            },
        ),
        (caps.retractions, ActionKind::Retract { target }),
    ];
    for (supported, kind) in checks {
        let name = kind.name();
        let result = session
            .apply(Action {
                room: room.key.clone(),
                persona: None,
                kind,
            })
            .await;
        match (supported, result) {
            (true, Ok(())) | (false, Err(NetworkError::Unsupported(_))) => {}
            (s, r) => panic!("action {name}: capability {s} but apply gave {r:?}"),
        }
    }
    session.disconnect().await;
}

/// Generates `#[tokio::test] async fn conformance()` for an adapter.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        #[tokio::test]
        async fn conformance() {
            let network: ::std::sync::Arc<dyn $crate::Network> = $factory.await;
            $crate::conformance::run(network).await;
        }
    };
}
