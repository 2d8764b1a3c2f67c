//! Who is in a room: XMPP users (one occupant per bare JID, possibly several sessions) and
//! remote users (puppets), with one nick namespace for both.

use causeway_api::RemoteUserId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmppOccupant {
    pub bare: String,
    pub nick: String,
    pub sessions: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteOccupant {
    pub nick: String,
    /// XEP-0153: SHA-1 of the avatar, once Causeway holds a copy.
    pub photo: Option<String>,
}

#[derive(Default, Debug)]
pub struct Occupants {
    /// by bare JID
    pub xmpp: BTreeMap<String, XmppOccupant>,
    pub remote: BTreeMap<RemoteUserId, RemoteOccupant>,
}

impl Occupants {
    /// Who holds a nick: Some(Ok(bare)) for an XMPP user, Some(Err(())) for a remote user.
    /// Compared without case and without allocating: a room may hold a thousand members,
    /// each added after a look at every nick already there.
    pub fn holder(&self, nick: &str) -> Option<Result<&str, ()>> {
        if let Some(o) = self.xmpp.values().find(|o| same_nick(&o.nick, nick)) {
            return Some(Ok(o.bare.as_str()));
        }
        self.remote
            .values()
            .any(|r| same_nick(&r.nick, nick))
            .then_some(Err(()))
    }

    pub fn by_session(&self, full: &str) -> Option<&XmppOccupant> {
        self.xmpp
            .get(super::super::xmpp::bare(full))
            .filter(|o| o.sessions.contains(full))
    }

    /// Every XMPP session in the room.
    pub fn sessions(&self) -> Vec<String> {
        self.xmpp
            .values()
            .flat_map(|o| o.sessions.iter().cloned())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.xmpp.len() + self.remote.len()
    }

    /// A free nick for a remote user: the display name, else "name (id)", else numbered.
    /// Characters a JID's resource cannot hold (controls, non-characters) are left out, and
    /// names and ids are cut to lengths whose sum stays far inside a resource's 1023 bytes.
    pub fn free_nick(&self, display: &str, id: &str) -> String {
        let shown: String = display
            .chars()
            .filter(|c| nick_char(*c))
            .take(MAX_NICK_CHARS)
            .collect();
        let base = shown.trim().replace('/', "∕");
        let id: String = id
            .chars()
            .filter(|c| nick_char(*c))
            .scan(0, |bytes, c| {
                *bytes += c.len_utf8();
                (*bytes <= MAX_ID_BYTES).then_some(c)
            })
            .collect();
        let id = id.as_str();
        let base = if base.is_empty() {
            id.to_string()
        } else {
            base
        };
        if self.holder(&base).is_none() {
            return base;
        }
        let with_id = format!("{base} ({id})");
        if self.holder(&with_id).is_none() {
            return with_id;
        }
        (2..)
            .map(|n| format!("{with_id} {n}"))
            .find(|n| self.holder(n).is_none())
            .unwrap_or(with_id)
    }
}

/// The longest display name shown as a nick, in characters (a Matrix display name may be
/// far longer; a resourcepart holds 1023 bytes).
const MAX_NICK_CHARS: usize = 64;
/// The longest remote id added to a nick to tell two members apart, in bytes.
const MAX_ID_BYTES: usize = 256;

/// Whether two nicks are the same but for case (a final sigma too).
fn same_nick(a: &str, b: &str) -> bool {
    fn folded(s: &str) -> impl Iterator<Item = char> + '_ {
        s.chars()
            .flat_map(char::to_lowercase)
            .map(|c| if c == 'ς' { 'σ' } else { c })
    }
    a == b || folded(a).eq(folded(b))
}

/// Whether a character may stand in a nick (a resourcepart, RFC 7622: no controls, no
/// non-characters).
fn nick_char(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{FDD0}'..='\u{FDEF}') && (c as u32) & 0xFFFE != 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks_are_deduplicated_case_insensitively() {
        let mut o = Occupants::default();
        o.xmpp.insert(
            "j@x".into(),
            XmppOccupant {
                bare: "j@x".into(),
                nick: "Alice".into(),
                sessions: ["j@x/a".to_string()].into(),
            },
        );
        assert_eq!(o.free_nick("alice", "u1"), "alice (u1)");
        o.remote.insert(
            RemoteUserId::new("u1"),
            RemoteOccupant {
                nick: "alice (u1)".into(),
                photo: None,
            },
        );
        assert_eq!(o.free_nick("ALICE", "u1"), "ALICE (u1) 2");
        assert_eq!(o.free_nick("  ", "u9"), "u9");
        assert_eq!(o.free_nick("a/b", "u3"), "a∕b");
        // (display name, nick): what a resource cannot hold is left out
        for (display, nick) in [
            ("Ca\u{1}rol\u{b}", "Carol"),
            ("\u{7f}Dave\u{85}\u{9f}", "Dave"),
            ("E\u{FFFE}v\u{FFFF}e\u{1FFFF}\u{FDD0}", "Eve"),
            ("\u{0}\t\n", "u4"),
            ("Zoë 🎉 名前", "Zoë 🎉 名前"),
        ] {
            assert_eq!(o.free_nick(display, "u4"), nick, "{display:?}");
        }
        // long names and ids are cut: a nick always fits a resourcepart (1023 bytes)
        let long = "𝔸".repeat(5000);
        let mut o2 = Occupants::default();
        let nick = o2.free_nick(&long, &"i".repeat(5000));
        assert_eq!(nick.chars().count(), MAX_NICK_CHARS);
        o2.remote.insert(
            RemoteUserId::new("x"),
            RemoteOccupant {
                nick: nick.clone(),
                photo: None,
            },
        );
        let again = o2.free_nick(&long, &"i".repeat(5000));
        assert!(again != nick && again.len() < 1023, "{}", again.len());
        assert_eq!(o.holder("ALICE"), Some(Ok("j@x")));
        assert_eq!(o.holder("Alice (U1)"), Some(Err(())));
        // case folds beyond ASCII; different lengths never match
        for (a, b, same) in [
            ("ÉMILE", "émile", true),
            ("ΣΑΣ", "σας", true),
            ("σασ", "ΣΑΣ", true),
            ("Straße", "STRASSE", false),
            ("İ", "i̇", true),
            ("ab", "abc", false),
        ] {
            assert_eq!(same_nick(a, b), same, "{a} {b}");
        }
        assert!(o.by_session("j@x/a").is_some() && o.by_session("j@x/b").is_none());
        assert_eq!(o.count(), 2);
    }
}
