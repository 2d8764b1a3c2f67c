//! A portal's archive (XEP-0313): stored messages in the order they were stored, paged by
//! their archive ids (stanza-ids).

use super::message::{from_row, COLS};
use super::{MessageRow, Result, Store};
use sqlx::Row;

/// One archived message: its row, its place in the archive and its tombstone, if retracted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archived {
    pub seq: i64,
    pub row: MessageRow,
    pub retracted_at: Option<i64>,
}

/// A row stands for an archive entry when it is the first part of a message split by the
/// network (later parts share its stanza-id), or one piece of a remote message (text and
/// files: each piece has its own stanza-id, "<remote id>#<n>").
const ENTRY: &str = "(part = 0 OR substr(stanza_id, 1, length(remote_id) + 1) = remote_id || '#')";

/// Which page: after or before an archive position, or the last page; within time bounds.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub after: Option<i64>,
    pub before: Option<i64>,
    /// The newest messages (RSM `<before/>` or `before-id`): taken from the end.
    pub from_end: bool,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub ids: Vec<String>,
    pub max: usize,
}

impl Store {
    /// Where a message sits in the archive, by its archive id.
    pub async fn archive_seq(&self, portal: i64, stanza_id: &str) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(id) AS seq FROM message WHERE portal_id = $1 AND stanza_id = $2",
        )
        .bind(portal)
        .bind(stanza_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("seq")?)
    }

    /// A page of the archive, oldest first, and whether it reaches the end of the archive in
    /// the paging direction (the `complete` of `<fin/>`). Later parts of split messages are
    /// left out: the first part stands for the message (see ENTRY).
    pub async fn archive_page(&self, portal: i64, p: &Page) -> Result<(Vec<Archived>, bool)> {
        let mut filter = format!("portal_id = $1 AND {ENTRY}");
        let mut n = 1;
        let mut arg = |cond: &str, filter: &mut String| {
            n += 1;
            filter.push_str(&format!(" AND {cond} ${n}"));
        };
        if p.after.is_some() {
            arg("id >", &mut filter);
        }
        if p.before.is_some() {
            arg("id <", &mut filter);
        }
        if p.start.is_some() {
            arg("sent_at >=", &mut filter);
        }
        if p.end.is_some() {
            arg("sent_at <=", &mut filter);
        }
        let ids_from = n + 1;
        if !p.ids.is_empty() {
            let list: Vec<String> = (0..p.ids.len())
                .map(|i| format!("${}", ids_from + i))
                .collect();
            filter.push_str(&format!(" AND stanza_id IN ({})", list.join(", ")));
        }
        let order = if p.from_end { "DESC" } else { "ASC" };
        let text = sql!(
            "SELECT id AS seq, retracted_at, {COLS} FROM message WHERE {filter} ORDER BY id {order} LIMIT {}",
            p.max + 1
        );
        let mut q = sqlx::query(text).bind(portal);
        for v in [p.after, p.before, p.start, p.end].into_iter().flatten() {
            q = q.bind(v);
        }
        for id in &p.ids {
            q = q.bind(id.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let complete = rows.len() <= p.max;
        let mut out = rows
            .iter()
            .take(p.max)
            .map(|r| {
                Ok(Archived {
                    seq: r.try_get("seq")?,
                    retracted_at: r.try_get("retracted_at")?,
                    row: from_row(r)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if p.from_end {
            out.reverse();
        }
        Ok((out, complete))
    }

    /// How many messages the archive holds in these time bounds (RSM `<count/>`).
    pub async fn archive_count(
        &self,
        portal: i64,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Result<i64> {
        let row = sqlx::query(sql!(
            "SELECT COUNT(*) AS n FROM message WHERE portal_id = $1 AND {ENTRY}
             AND sent_at >= $2 AND sent_at <= $3"
        ))
        .bind(portal)
        .bind(start.unwrap_or(i64::MIN))
        .bind(end.unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{testing, Record};
    use causeway_api::RemoteMessageId;

    fn row(portal: i64, i: usize, part: i64) -> MessageRow {
        MessageRow {
            portal_id: portal,
            remote_id: RemoteMessageId::new(format!("r{i}.{part}")),
            part,
            stanza_id: format!("s{i}"),
            origin_id: None,
            xmpp_id: None,
            sender: "u".into(),
            sender_nick: "U".into(),
            from_xmpp: false,
            body: Some(format!("m{i}")),
            reply_to: None,
            sent_at: 1000 + i as i64,
        }
    }

    fn ids(page: &[Archived]) -> Vec<String> {
        page.iter().map(|a| a.row.stanza_id.clone()).collect()
    }

    #[tokio::test]
    async fn pages_walk_the_archive_both_ways_once_each() {
        let _g = testing::PG_LOCK.lock().await;
        for s in testing::stores().await {
            let p = testing::portal(&s, "arch").await;
            // 250 messages, the 10th split in two parts (one archive entry)
            let mut rows: Vec<MessageRow> = (0..250).map(|i| row(p.id, i, 0)).collect();
            rows.insert(11, row(p.id, 10, 1));
            let rec = [Record::<String> {
                rows: &rows,
                stanzas: &[],
            }];
            s.record_batch("gw", &rec).await.expect("store");
            let all: Vec<String> = (0..250).map(|i| format!("s{i}")).collect();

            // forwards, 100 at a time
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let page = Page {
                    after,
                    max: 100,
                    ..Page::default()
                };
                let (items, complete) = s.archive_page(p.id, &page).await.expect("page");
                got.extend(ids(&items));
                after = items.last().map(|a| a.seq);
                if complete {
                    break;
                }
            }
            assert_eq!(got, all);

            // backwards from the end (empty <before/>), 70 at a time
            let mut got: Vec<String> = Vec::new();
            let mut before = None;
            loop {
                let page = Page {
                    before,
                    from_end: true,
                    max: 70,
                    ..Page::default()
                };
                let (items, complete) = s.archive_page(p.id, &page).await.expect("page");
                let mut chunk = ids(&items);
                chunk.extend(got);
                got = chunk;
                before = items.first().map(|a| a.seq);
                if complete {
                    break;
                }
            }
            assert_eq!(got, all);

            // time bounds, ids, count, position
            let page = Page {
                start: Some(1100),
                end: Some(1104),
                max: 50,
                ..Page::default()
            };
            let (items, complete) = s.archive_page(p.id, &page).await.expect("page");
            assert_eq!(
                (ids(&items), complete),
                (
                    vec![
                        "s100".into(),
                        "s101".into(),
                        "s102".into(),
                        "s103".into(),
                        "s104".into()
                    ],
                    true
                )
            );
            let page = Page {
                ids: vec!["s7".into(), "s3".into()],
                max: 50,
                ..Page::default()
            };
            assert_eq!(
                ids(&s.archive_page(p.id, &page).await.expect("page").0),
                ["s3", "s7"]
            );
            assert_eq!(s.archive_count(p.id, None, None).await.expect("count"), 250);
            assert_eq!(
                s.archive_count(p.id, Some(1200), None)
                    .await
                    .expect("count"),
                50
            );
            assert!(s.archive_seq(p.id, "s5").await.expect("seq").is_some());
            assert_eq!(s.archive_seq(p.id, "nope").await.expect("seq"), None);

            // a remote message with a file: each piece is an entry; a network-split XMPP
            // message is one
            let q = testing::portal(&s, "pieces").await;
            let mut text = row(q.id, 1, 0);
            text.remote_id = RemoteMessageId::new("R");
            text.stanza_id = "R".into();
            let mut file = row(q.id, 1, 1);
            file.remote_id = RemoteMessageId::new("R");
            file.stanza_id = "R#1".into();
            let mut split0 = row(q.id, 2, 0);
            split0.remote_id = RemoteMessageId::new("X0");
            split0.stanza_id = "X0".into();
            let mut split1 = row(q.id, 2, 1);
            split1.remote_id = RemoteMessageId::new("X1");
            split1.stanza_id = "X0".into();
            let rows = [text, file, split0, split1];
            s.record_batch(
                "gw",
                &[Record::<String> {
                    rows: &rows,
                    stanzas: &[],
                }],
            )
            .await
            .expect("store");
            let all = Page {
                max: 10,
                ..Page::default()
            };
            assert_eq!(
                ids(&s.archive_page(q.id, &all).await.expect("page").0),
                ["R", "R#1", "X0"]
            );
            assert_eq!(s.archive_count(q.id, None, None).await.expect("count"), 3);
        }
    }
}
