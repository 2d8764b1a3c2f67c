use super::{opt_str, Result, Store};
use causeway_api::RemoteMessageId;
use sqlx::{any::AnyRow, Row};
use std::collections::HashSet;

/// One bridged message (one part of it, when the network split it): the id map that makes
/// edits, replies, reactions and retractions work across restarts, and the room history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRow {
    pub portal_id: i64,
    pub remote_id: RemoteMessageId,
    pub part: i64,
    /// The XEP-0359 stanza-id the room stamps (the remote id for remote messages).
    pub stanza_id: String,
    pub origin_id: Option<String>,
    /// The client's own stanza id, for messages from XMPP.
    pub xmpp_id: Option<String>,
    /// Remote user id, or the XMPP bare JID for messages from XMPP.
    pub sender: String,
    pub sender_nick: String,
    pub from_xmpp: bool,
    pub body: Option<String>,
    pub reply_to: Option<String>,
    pub sent_at: i64,
}

pub(super) const COLS: &str = "portal_id, remote_id, part, stanza_id, origin_id, xmpp_id, sender, sender_nick, from_xmpp, body, reply_to, sent_at";

pub(super) fn from_row(r: &AnyRow) -> Result<MessageRow> {
    Ok(MessageRow {
        portal_id: r.try_get("portal_id")?,
        remote_id: RemoteMessageId::new(r.try_get::<String, _>("remote_id")?),
        part: r.try_get("part")?,
        stanza_id: r.try_get("stanza_id")?,
        origin_id: opt_str(r, "origin_id")?,
        xmpp_id: opt_str(r, "xmpp_id")?,
        sender: r.try_get("sender")?,
        sender_nick: r.try_get("sender_nick")?,
        from_xmpp: r.try_get::<i64, _>("from_xmpp")? != 0,
        body: opt_str(r, "body")?,
        reply_to: opt_str(r, "reply_to")?,
        sent_at: r.try_get("sent_at")?,
    })
}

/// Rows per INSERT statement (12 parameters each). Kept small: SQLite finds a numbered
/// parameter's name by a linear scan, so binding costs grow with the square of the count.
const ROWS_PER_STATEMENT: usize = 8;

/// Rows per INSERT statement on SQLite, where parameters are anonymous (`?`, bound in order,
/// no name lookup): one statement for a usual group commit.
const SQLITE_ROWS_PER_STATEMENT: usize = 128;

pub(super) type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

fn bind_row<'q>(q: Query<'q>, m: &'q MessageRow) -> Query<'q> {
    q.bind(m.portal_id)
        .bind(m.remote_id.as_str())
        .bind(m.part)
        .bind(&m.stanza_id)
        .bind(m.origin_id.as_deref())
        .bind(m.xmpp_id.as_deref())
        .bind(&m.sender)
        .bind(&m.sender_nick)
        .bind(i64::from(m.from_xmpp))
        .bind(m.body.as_deref())
        .bind(m.reply_to.as_deref())
        .bind(m.sent_at)
}

/// An INSERT of message rows. `checked`: it skips those stored before and returns the keys
/// of those it stored; else a row stored before fails it (a unique violation).
fn insert_statement(values: &[String], checked: bool) -> String {
    let then = if checked {
        " ON CONFLICT (portal_id, remote_id, part) DO NOTHING RETURNING portal_id, remote_id, part"
    } else {
        ""
    };
    format!(
        "INSERT INTO message ({COLS}) VALUES {}{then}",
        values.join(", ")
    )
}

/// Per row, whether it is among the `inserted` keys and not repeated earlier in `rows`.
fn fresh_rows(rows: &[&MessageRow], returned: &[AnyRow]) -> Result<Vec<bool>> {
    let inserted: HashSet<(i64, String, i64)> = returned
        .iter()
        .map(|r| {
            Ok((
                r.try_get("portal_id")?,
                r.try_get("remote_id")?,
                r.try_get("part")?,
            ))
        })
        .collect::<Result<_>>()?;
    let mut seen: HashSet<(i64, &str, i64)> = HashSet::new();
    Ok(rows
        .iter()
        .map(|m| {
            let key = (m.portal_id, m.remote_id.as_str(), m.part);
            inserted.contains(&(key.0, key.1.to_string(), key.2)) && seen.insert(key)
        })
        .collect())
}

/// Store message rows, several per statement. Returns, per row, whether it was new (false =
/// already stored, or repeated earlier in `rows`: a duplicate delivery).
pub(super) async fn insert_rows(
    conn: &mut sqlx::AnyConnection,
    rows: &[&MessageRow],
) -> Result<Vec<bool>> {
    let mut returned = Vec::new();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p: Vec<String> = (1..=12).map(|k| format!("${}", i * 12 + k)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let mut q = sqlx::query(sql!("{}", insert_statement(&values, true)));
        for m in chunk {
            q = bind_row(q, m);
        }
        returned.extend(q.fetch_all(&mut *conn).await?);
    }
    fresh_rows(rows, &returned)
}

/// SQLite INSERT statements for `n` rows with anonymous parameters (bound in order with
/// `bind_rows`), each ending with `;`; `checked` as for `insert_statement`.
pub(super) fn sqlite_inserts(n: usize, checked: bool) -> String {
    let row = format!("({})", ["?"; 12].join(", "));
    let mut text = String::new();
    let mut left = n;
    while left > 0 {
        let k = left.min(SQLITE_ROWS_PER_STATEMENT);
        text.push_str(&insert_statement(&vec![row.clone(); k], checked));
        text.push(';');
        left -= k;
    }
    text
}

pub(super) fn bind_rows<'q>(mut q: Query<'q>, rows: &[&'q MessageRow]) -> Query<'q> {
    for m in rows {
        q = bind_row(q, m);
    }
    q
}

/// The same on SQLite in one round trip to the connection's thread, after `prefix` (a
/// statement such as BEGIN): every statement in one query text.
pub(super) async fn insert_rows_sqlite(
    conn: &mut sqlx::AnyConnection,
    prefix: &str,
    rows: &[&MessageRow],
) -> Result<Vec<bool>> {
    let text = format!("{prefix}{}", sqlite_inserts(rows.len(), true));
    let returned = bind_rows(sqlx::query(sql!("{text}")), rows)
        .fetch_all(&mut *conn)
        .await?;
    fresh_rows(rows, &returned)
}

impl Store {
    async fn message_where(
        &self,
        portal: i64,
        col: &str,
        value: &str,
    ) -> Result<Option<MessageRow>> {
        let row = sqlx::query(sql!(
            "SELECT {COLS} FROM message WHERE portal_id = $1 AND {col} = $2 ORDER BY part LIMIT 1"
        ))
        .bind(portal)
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn message_by_remote(
        &self,
        portal: i64,
        id: &RemoteMessageId,
    ) -> Result<Option<MessageRow>> {
        self.message_where(portal, "remote_id", id.as_str()).await
    }

    /// Every stored part of a remote message (text and attachments), first part first.
    pub async fn message_pieces(
        &self,
        portal: i64,
        id: &RemoteMessageId,
    ) -> Result<Vec<MessageRow>> {
        let rows = sqlx::query(sql!(
            "SELECT {COLS} FROM message WHERE portal_id = $1 AND remote_id = $2 ORDER BY part"
        ))
        .bind(portal)
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// By the id XEP-0424/0444/0461 use in a MUC: the stanza-id.
    pub async fn message_by_stanza_id(&self, portal: i64, id: &str) -> Result<Option<MessageRow>> {
        self.message_where(portal, "stanza_id", id).await
    }

    /// A message an XMPP user sent before with this origin-id (XEP-0359), first part.
    pub async fn message_by_origin(
        &self,
        portal: i64,
        sender: &str,
        origin_id: &str,
    ) -> Result<Option<MessageRow>> {
        let row = sqlx::query(sql!(
            "SELECT {COLS} FROM message WHERE portal_id = $1 AND origin_id = $2 AND sender = $3
             AND from_xmpp ORDER BY part LIMIT 1"
        ))
        .bind(portal)
        .bind(origin_id)
        .bind(sender)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// By the id XEP-0308 uses: the sender's own message id.
    pub async fn message_by_xmpp_id(&self, portal: i64, id: &str) -> Result<Option<MessageRow>> {
        self.message_where(portal, "xmpp_id", id).await
    }

    /// The last `limit` messages with a body, oldest first.
    pub async fn recent_messages(&self, portal: i64, limit: i64) -> Result<Vec<MessageRow>> {
        let rows = sqlx::query(sql!(
            "SELECT {COLS} FROM message WHERE portal_id = $1 AND body IS NOT NULL ORDER BY id DESC LIMIT $2"
        ))
        .bind(portal)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut v = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        v.reverse();
        Ok(v)
    }

    pub async fn count_messages(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM message")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn msg(portal: i64, remote: &str, xmpp_id: Option<&str>) -> MessageRow {
        MessageRow {
            portal_id: portal,
            remote_id: RemoteMessageId::new(remote),
            part: 0,
            stanza_id: remote.into(),
            origin_id: None,
            xmpp_id: xmpp_id.map(String::from),
            sender: "u".into(),
            sender_nick: "U".into(),
            from_xmpp: xmpp_id.is_some(),
            body: Some(format!("body {remote}")),
            reply_to: None,
            sent_at: 1,
        }
    }

    async fn portal(s: &crate::store::Store, room: &str) -> crate::store::PortalRow {
        testing::portal(s, room).await
    }

    /// Each lookup by id is served by an index, also the partial one on xmpp_id.
    #[tokio::test]
    async fn lookups_by_id_use_their_index() {
        let s = crate::store::Store::open("sqlite::memory:", 1)
            .await
            .expect("sqlite");
        for (col, index) in [
            ("stanza_id", "message_stanza"),
            ("xmpp_id", "message_xmpp"),
            ("remote_id", "sqlite_autoindex_message_1"),
        ] {
            let plan = sqlx::query(sql!(
                "EXPLAIN QUERY PLAN SELECT {COLS} FROM message WHERE portal_id = $1 AND {col} = $2 ORDER BY part LIMIT 1"
            ))
            .bind(1_i64)
            .bind("x")
            .fetch_all(&s.pool)
            .await
            .expect("plan");
            let detail: Vec<String> = plan
                .iter()
                .map(|r| r.try_get::<String, _>("detail").expect("detail"))
                .collect();
            assert!(
                detail
                    .iter()
                    .any(|d| d.contains(&format!("USING INDEX {index}"))),
                "{col}: {detail:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_group_commit_keeps_order_and_drops_duplicates_within_it() {
        let _g = testing::PG_LOCK.lock().await;
        for s in testing::stores().await {
            let p = portal(&s, "g").await;
            let st = |names: &[&str]| {
                names
                    .iter()
                    .map(|n| format!("<message id='{n}'/>"))
                    .collect::<Vec<_>>()
            };
            let (a, b, c) = (st(&["a1", "a2"]), st(&["b1"]), st(&["c1", "c2", "c3"]));
            let (m1, m1_again, m2) = (
                [msg(p.id, "m1", None)],
                [msg(p.id, "m1", None)],
                [msg(p.id, "m2", None)],
            );
            let records = [
                crate::store::Record {
                    rows: &m1,
                    stanzas: &a,
                },
                crate::store::Record {
                    rows: &m1_again,
                    stanzas: &b,
                },
                crate::store::Record {
                    rows: &[],
                    stanzas: &c,
                },
                crate::store::Record {
                    rows: &m2,
                    stanzas: &[],
                },
            ];
            let out = s.record_batch("gw.example", &records).await.expect("batch");
            assert_eq!(
                out.kept,
                [true, false, true, true],
                "a duplicate inside the batch is dropped"
            );
            let seq = out.seq.expect("stanzas kept in one row");
            let pending = s.outbox_pending("gw.example").await.expect("pending");
            assert_eq!(pending.iter().map(|e| e.seq).collect::<Vec<_>>(), [seq]);
            assert_eq!(pending[0].stanzas, [a, c].concat().concat());
            assert_eq!(s.outbox_depth().await.expect("depth"), 5);
            assert_eq!(
                s.cursor(p.id).await.expect("cursor").map(|c| c.0),
                Some("m2".into())
            );
        }
    }

    #[tokio::test]
    async fn messages_dedup_map_and_cursor() {
        let _g = testing::PG_LOCK.lock().await;
        for s in testing::stores().await {
            let p = portal(&s, "r").await;
            let stanza = ["<message id='m1'/>".to_string()];
            let first = [msg(p.id, "m1", None), msg(p.id, "m2", Some("c-2"))];
            let record = |rows| crate::store::Record {
                rows,
                stanzas: &stanza,
            };
            let queued = s
                .record_batch("gw.example", &[record(&first)])
                .await
                .expect("insert");
            assert_eq!(queued.kept, [true]);
            assert!(queued.seq.is_some());
            // the same remote message delivered again is a duplicate: nothing is queued
            let again = [msg(p.id, "m1", None)];
            let queued = s
                .record_batch("gw.example", &[record(&again)])
                .await
                .expect("again");
            assert_eq!(queued.kept, [false]);
            assert_eq!(queued.seq, None);
            assert_eq!(s.outbox_depth().await.expect("depth"), 1);
            assert_eq!(
                s.cursor(p.id).await.expect("cursor").map(|c| c.0),
                Some("m2".to_string()),
                "a duplicate moved the cursor back"
            );
            assert_eq!(
                s.message_by_xmpp_id(p.id, "c-2")
                    .await
                    .expect("q")
                    .map(|m| m.remote_id.0),
                Some("m2".into())
            );
            assert_eq!(
                s.message_by_stanza_id(p.id, "m1")
                    .await
                    .expect("q")
                    .map(|m| m.from_xmpp),
                Some(false)
            );
            assert!(s
                .message_by_remote(p.id, &RemoteMessageId::new("zz"))
                .await
                .expect("q")
                .is_none());
            let recent = s.recent_messages(p.id, 10).await.expect("recent");
            assert_eq!(
                recent
                    .iter()
                    .map(|m| m.remote_id.as_str())
                    .collect::<Vec<_>>(),
                ["m1", "m2"]
            );
            assert_eq!(
                s.recent_messages(p.id, 1).await.expect("recent")[0]
                    .remote_id
                    .as_str(),
                "m2"
            );
            // a failed batch (no such portal) stores nothing and leaves no transaction open
            let orphan = [msg(p.id + 1000, "m9", None)];
            assert!(s
                .record_batch("gw.example", &[record(&orphan)])
                .await
                .is_err());
            let next = [msg(p.id, "m3", None)];
            let after = s
                .record_batch("gw.example", &[record(&next)])
                .await
                .expect("the writer works after a failed batch");
            assert_eq!(after.kept, [true]);
            assert_eq!(
                s.outbox_depth().await.expect("depth"),
                2,
                "the failed batch kept nothing"
            );
        }
    }
}
