//! The room's latest messages, kept in memory: replies, corrections, reactions and markers
//! mostly point at them, and finding them here spares a store read (and a wait for the
//! store to catch up with messages still being written).

use crate::store::MessageRow;
use std::collections::VecDeque;

/// Messages remembered per room. Older ones are looked up in the store (indexed): a row
/// takes about 500 bytes, and a thousand live portals keep this many each (BENCHMARKS.md,
/// memory at scale).
const RECENT: usize = 64;

#[derive(Default)]
pub struct Recent {
    rows: VecDeque<MessageRow>,
}

impl Recent {
    pub fn remember(&mut self, rows: &[MessageRow]) {
        for r in rows {
            if self.rows.len() >= RECENT {
                self.rows.pop_front();
            }
            self.rows.push_back(r.clone());
        }
    }

    /// By remote id: the first part.
    pub fn by_remote(&self, id: &str) -> Option<&MessageRow> {
        self.rows
            .iter()
            .rev()
            .filter(|r| r.remote_id.as_str() == id)
            .min_by_key(|r| r.part)
    }

    /// By the id a client uses: stanza-id first, then its own id.
    pub fn by_client_id(&self, id: &str) -> Option<&MessageRow> {
        let first_part = |f: &dyn Fn(&MessageRow) -> bool| {
            self.rows
                .iter()
                .rev()
                .filter(|r| f(r))
                .min_by_key(|r| r.part)
                .cloned()
        };
        first_part(&|r| r.stanza_id == id)
            .or_else(|| first_part(&|r| r.xmpp_id.as_deref() == Some(id)))
            .and_then(|found| {
                self.rows
                    .iter()
                    .find(|r| r.stanza_id == found.stanza_id && r.part == found.part)
            })
    }

    /// A message this user sent with this origin-id (XEP-0359), first part.
    pub fn by_origin(&self, sender: &str, origin_id: &str) -> Option<&MessageRow> {
        self.rows
            .iter()
            .rev()
            .filter(|r| r.sender == sender && r.origin_id.as_deref() == Some(origin_id))
            .min_by_key(|r| r.part)
    }

    /// A correction: the text of the message with this stanza-id changed.
    pub fn set_body(&mut self, stanza_id: &str, body: Option<&str>) {
        for r in self
            .rows
            .iter_mut()
            .filter(|r| r.stanza_id == stanza_id && r.part == 0)
        {
            r.body = body.map(String::from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_api::RemoteMessageId;

    fn row(remote: &str, part: i64, stanza: &str, xmpp: Option<&str>) -> MessageRow {
        MessageRow {
            portal_id: 1,
            remote_id: RemoteMessageId::new(remote),
            part,
            stanza_id: stanza.into(),
            origin_id: None,
            xmpp_id: xmpp.map(String::from),
            sender: "s".into(),
            sender_nick: "S".into(),
            from_xmpp: xmpp.is_some(),
            body: Some(format!("{remote}/{part}")),
            reply_to: None,
            sent_at: 0,
        }
    }

    #[test]
    fn finds_by_every_id_and_forgets_the_oldest() {
        let mut r = Recent::default();
        r.remember(&[
            row("a", 0, "a", None),
            row("b", 0, "b", Some("c1")),
            row("b2", 1, "b", Some("c1")),
        ]);
        assert_eq!(r.by_remote("a").map(|m| m.stanza_id.as_str()), Some("a"));
        assert_eq!(
            r.by_client_id("c1").map(|m| m.remote_id.as_str()),
            Some("b")
        );
        assert_eq!(r.by_client_id("b").map(|m| m.part), Some(0));
        assert!(r.by_client_id("zz").is_none());
        r.set_body("b", Some("new"));
        assert_eq!(
            r.by_remote("b").and_then(|m| m.body.as_deref()),
            Some("new")
        );
        let many: Vec<MessageRow> = (0..RECENT)
            .map(|i| row(&format!("m{i}"), 0, &format!("m{i}"), None))
            .collect();
        r.remember(&many);
        assert!(r.by_remote("a").is_none(), "the oldest are forgotten");
        assert!(r.by_remote(&format!("m{}", RECENT - 1)).is_some());
    }
}
