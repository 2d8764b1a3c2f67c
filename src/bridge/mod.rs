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
