//! The bridge engine: no XML, no SQL. The router hands every event to the portal (one task
//! per bridged room) that owns it; portals keep per-room order, map ids through the store,
//! and say what XMPP should see through `xmpp::outbound`'s typed builders.

mod occupants;
pub(crate) mod personas;
mod portal;
pub(crate) mod quota;
mod reactions;
mod router;
pub(crate) mod serial;
pub(crate) mod service;

pub use router::{Bridge, NetCtx, Shared};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// XEP-0421 occupant id: stable per user, opaque, not reversible without the key.
pub fn occupant_id(key: &str, who: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return hex::encode(who.as_bytes()), // HMAC takes any key length: unreachable
    };
    mac.update(who.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// A transaction id for something Causeway sends to a network: a random part and a tag
/// keyed with the gateway's secret, so that its echo is recognised as Causeway's own after
/// a restart too (a crash between the send and the store must not bring it back as a
/// remote user's post), and nobody else can make one.
pub fn own_txn(key: &str) -> causeway_api::TxnId {
    let random = format!("{:016x}", rand::random::<u64>());
    let tag = &occupant_id(key, &format!("txn:{random}"))[..16];
    causeway_api::TxnId::new(format!("cw{random}{tag}"))
}

/// Whether a transaction id is one `own_txn` made with this key.
pub fn is_own_txn(key: &str, txn: &causeway_api::TxnId) -> bool {
    let t = txn.as_str();
    match (t.get(2..18), t.get(18..)) {
        (Some(random), Some(tag)) if t.starts_with("cw") => {
            occupant_id(key, &format!("txn:{random}")).get(..16) == Some(tag)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_transactions_are_recognised_with_the_key_only() {
        let t = super::own_txn("k1");
        assert!(super::is_own_txn("k1", &t));
        assert!(!super::is_own_txn("k2", &t));
        for other in [
            "",
            "cw",
            "cw0123456789abcdef",
            "m.1",
            &format!("{}x", t.as_str()),
        ] {
            assert!(
                !super::is_own_txn("k1", &causeway_api::TxnId::new(other)),
                "{other}"
            );
        }
    }
}
