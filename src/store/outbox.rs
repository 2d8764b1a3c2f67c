use super::message::insert_rows;
use super::{now_ms, MessageRow, Result, Store};
use sqlx::Row;

/// Stanzas per INSERT statement (small, for the same reason as message rows).
const STANZAS_PER_STATEMENT: usize = 32;

/// Keep stanzas in the outbox, several per statement; their sequence numbers, in order.
/// The rows of one INSERT get ascending sequence numbers in the order of its VALUES (SQLite's
/// AUTOINCREMENT and PostgreSQL's sequence both number rows as they are inserted), so the
/// returned numbers, sorted, line up with the stanzas.
async fn push_rows(
    conn: &mut sqlx::AnyConnection,
    domain: &str,
    stanzas: &[&str],
) -> Result<Vec<i64>> {
    let mut seqs = Vec::with_capacity(stanzas.len());
    let now = now_ms();
    for chunk in stanzas.chunks(STANZAS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("($1, $2, ${})", i + 3))
            .collect();
        let mut q = sqlx::query(sql!(
            "INSERT INTO outbox (domain, created_at, stanza) VALUES {} RETURNING seq",
            values.join(", ")
        ))
        .bind(domain)
        .bind(now);
        for s in chunk {
            q = q.bind(*s);
        }
        let mut got: Vec<i64> = q
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get("seq"))
            .collect::<std::result::Result<_, _>>()?;
        got.sort_unstable();
        seqs.extend(got);
    }
    Ok(seqs)
}

/// One entry of a group commit (see `Store::record_batch`).
pub struct Record<'a> {
    pub rows: &'a [MessageRow],
    pub stanzas: &'a [String],
}

/// A stanza accepted for delivery to XMPP and not yet acknowledged by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub stanza: String,
}

impl Store {
    /// Group commit: for each record, store its message rows and, unless its first row was
    /// already stored (a duplicate delivery: None), keep its stanzas in the outbox. One
    /// transaction for all of them.
    pub async fn record_batch(
        &self,
        domain: &str,
        records: &[Record<'_>],
    ) -> Result<Vec<Option<Vec<i64>>>> {
        // Presences and IQ answers only: nothing to store, no transaction.
        if records
            .iter()
            .all(|r| r.rows.is_empty() && r.stanzas.is_empty())
        {
            return Ok(records.iter().map(|_| Some(Vec::new())).collect());
        }
        let mut tx = self.write.begin().await?;
        let rows: Vec<&MessageRow> = records.iter().flat_map(|r| r.rows.iter()).collect();
        let fresh = insert_rows(&mut tx, &rows).await?;
        // Which records go out: not those whose first row was stored before (a duplicate).
        let mut keep = Vec::with_capacity(records.len());
        let mut at = 0;
        for r in records {
            let f = &fresh[at..at + r.rows.len()];
            at += r.rows.len();
            keep.push(f.first() != Some(&false));
        }
        let stanzas: Vec<&str> = records
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .flat_map(|(r, _)| r.stanzas.iter().map(String::as_str))
            .collect();
        let mut seqs = push_rows(&mut tx, domain, &stanzas).await?.into_iter();
        let out = records
            .iter()
            .zip(&keep)
            .map(|(r, k)| k.then(|| seqs.by_ref().take(r.stanzas.len()).collect()))
            .collect();
        tx.commit().await?;
        Ok(out)
    }

    /// The server acknowledged these rows: forget them.
    pub async fn outbox_ack(&self, domain: &str, seqs: &[i64]) -> Result<u64> {
        let mut done = 0;
        for chunk in seqs.chunks(500) {
            // Only integers are spliced into the text.
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            done += sqlx::query(sql!(
                "DELETE FROM outbox WHERE domain = $1 AND seq IN ({list})"
            ))
            .bind(domain)
            .execute(&self.write)
            .await?
            .rows_affected();
        }
        Ok(done)
    }

    /// What is still unacknowledged, oldest first: re-sent after a reconnect.
    pub async fn outbox_pending(&self, domain: &str) -> Result<Vec<OutboxEntry>> {
        let rows = sqlx::query("SELECT seq, stanza FROM outbox WHERE domain = $1 ORDER BY seq")
            .bind(domain)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEntry {
                    seq: r.try_get("seq")?,
                    stanza: r.try_get("stanza")?,
                })
            })
            .collect()
    }

    pub async fn outbox_depth(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{testing, Record};

    #[tokio::test]
    async fn outbox_keeps_until_acked_in_order() {
        let _g = testing::PG_LOCK.lock().await;
        for s in testing::stores().await {
            let stanzas: Vec<String> = (0..5).map(|i| format!("<message id='{i}'/>")).collect();
            let push = |stanzas| [Record { rows: &[], stanzas }];
            let seqs = s
                .record_batch("a.example", &push(&stanzas))
                .await
                .expect("push")[0]
                .clone()
                .expect("no rows: always queued");
            s.record_batch("b.example", &push(&["<x/>".to_string()]))
                .await
                .expect("push other domain");
            assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(s.outbox_ack("a.example", &seqs[..3]).await.expect("ack"), 3);
            assert_eq!(
                s.outbox_ack("b.example", &seqs[3..])
                    .await
                    .expect("other domain untouched"),
                0
            );
            let left: Vec<String> = s
                .outbox_pending("a.example")
                .await
                .expect("pending")
                .into_iter()
                .map(|e| e.stanza)
                .collect();
            assert_eq!(left, stanzas[3..]);
            assert_eq!(s.outbox_depth().await.expect("depth"), 3);
        }
    }
}
