use super::message::{insert_rows, insert_rows_sqlite};
use super::{now_ms, Backend, MessageRow, Result, Store, StoreError};
use sqlx::{Connection, Row};

/// One entry of a group commit (see `Store::record_batch`): message rows and the stanzas
/// (text) telling XMPP about them.
pub struct Record<'a, S = String> {
    pub rows: &'a [MessageRow],
    pub stanzas: &'a [S],
}

/// What a group commit stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The outbox row holding the stanzas kept (None when there were none).
    pub seq: Option<i64>,
    /// Per record: false when its first row was stored before (a duplicate delivery), so
    /// its stanzas were not kept and must not be sent.
    pub kept: Vec<bool>,
}

/// Stanzas accepted for delivery to XMPP and not yet acknowledged by the server: those of
/// one group commit, concatenated in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub stanzas: String,
    /// How many of its first stanzas the server acknowledged already.
    pub acked: i64,
}

/// Which records go out: not those whose first row was stored before (a duplicate).
fn kept<S>(records: &[Record<'_, S>], fresh: &[bool]) -> Vec<bool> {
    let mut at = 0;
    records
        .iter()
        .map(|r| {
            let f = &fresh[at..at + r.rows.len()];
            at += r.rows.len();
            f.first() != Some(&false)
        })
        .collect()
}

/// The stanzas of the records kept, concatenated, and how many.
fn kept_stanzas<S: AsRef<str>>(records: &[Record<'_, S>], kept: &[bool]) -> (String, i64) {
    let mut text = String::new();
    let mut n = 0;
    for (r, _) in records.iter().zip(kept).filter(|(_, k)| **k) {
        for s in r.stanzas {
            text.push_str(s.as_ref());
            n += 1;
        }
    }
    (text, n)
}

/// Keep `n` stanzas (`text`) in one outbox row with `sql`; its sequence number.
async fn push_row(
    conn: &mut sqlx::AnyConnection,
    sql: &'static str,
    domain: &str,
    text: String,
    n: i64,
) -> Result<i64> {
    let rows = sqlx::query(sql)
        .bind(domain)
        .bind(now_ms())
        .bind(text)
        .bind(n)
        // all of it: fetch_one would stop before a COMMIT that follows
        .fetch_all(&mut *conn)
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("the outbox insert returned no seq".into()))?;
    Ok(row.try_get("seq")?)
}

/// Never leave the writer inside a failed transaction.
async fn rollback(conn: &mut super::writer::WriteConn) {
    if sqlx::query("ROLLBACK").execute(&mut **conn).await.is_err() {
        conn.discard();
    }
    conn.closed_transaction();
}

impl Store {
    /// Group commit: for each record, store its message rows and, unless its first row was
    /// already stored (a duplicate delivery), keep its stanzas in the outbox, all of them in
    /// one outbox row. One transaction for all of them.
    pub async fn record_batch<S: AsRef<str> + Sync>(
        &self,
        domain: &str,
        records: &[Record<'_, S>],
    ) -> Result<Recorded> {
        // Presences and IQ answers only: nothing to store, no transaction.
        if records
            .iter()
            .all(|r| r.rows.is_empty() && r.stanzas.is_empty())
        {
            return Ok(Recorded {
                seq: None,
                kept: vec![true; records.len()],
            });
        }
        let rows: Vec<&MessageRow> = records.iter().flat_map(|r| r.rows.iter()).collect();
        match self.backend {
            Backend::Sqlite => self.record_batch_sqlite(domain, records, &rows).await,
            Backend::Postgres => {
                let mut conn = self.write.conn().await?;
                let mut tx = conn.begin().await?;
                let fresh = insert_rows(&mut tx, &rows).await?;
                let kept = kept(records, &fresh);
                let (text, n) = kept_stanzas(records, &kept);
                let seq = if n > 0 {
                    let sql = "INSERT INTO outbox (domain, created_at, stanza, stanzas) VALUES ($1, $2, $3, $4) RETURNING seq";
                    Some(push_row(&mut tx, sql, domain, text, n).await?)
                } else {
                    None
                };
                tx.commit().await?;
                Ok(Recorded { seq, kept })
            }
        }
    }

    /// The same on SQLite, where every statement is a trip to the connection's thread and
    /// back (two thread switches, each of which can wait for a busy CPU: they were most of a
    /// commit's time), and each statement's result one more wake-up. Usually one trip of four
    /// statements: BEGIN, the rows, the outbox row, COMMIT. A row stored before (a duplicate
    /// delivery, rare) fails the INSERT: that trip is rolled back and `record_batch_checked`
    /// sorts it out row by row.
    async fn record_batch_sqlite<S: AsRef<str> + Sync>(
        &self,
        domain: &str,
        records: &[Record<'_, S>],
        rows: &[&MessageRow],
    ) -> Result<Recorded> {
        let all = vec![true; records.len()];
        let (text, n) = kept_stanzas(records, &all);
        let sql = format!(
            "BEGIN IMMEDIATE;
             {inserts}
             INSERT INTO outbox (domain, created_at, stanza, stanzas)
               SELECT ?, ?, ?, ? WHERE ? > 0 RETURNING seq;
             COMMIT",
            inserts = super::message::sqlite_inserts(rows.len(), false),
        );
        let mut conn = self.write.conn().await?;
        conn.open_transaction();
        let q = super::message::bind_rows(sqlx::query(sql!("{sql}")), rows)
            .bind(domain)
            .bind(now_ms())
            .bind(text)
            .bind(n)
            .bind(n);
        let got = match q.fetch_all(&mut *conn).await {
            Ok(got) => got,
            Err(e) => {
                rollback(&mut conn).await;
                drop(conn);
                let duplicate = matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation());
                if duplicate {
                    return self.record_batch_checked(domain, records, rows).await;
                }
                return Err(e.into());
            }
        };
        conn.closed_transaction();
        let seq = match got.first() {
            Some(r) => Some(r.try_get("seq")?),
            None => None,
        };
        Ok(Recorded { seq, kept: all })
    }

    /// A group commit that finds out which records are duplicates before keeping stanzas:
    /// BEGIN with the message rows, then the outbox row with COMMIT.
    async fn record_batch_checked<S: AsRef<str> + Sync>(
        &self,
        domain: &str,
        records: &[Record<'_, S>],
        rows: &[&MessageRow],
    ) -> Result<Recorded> {
        let mut conn = self.write.conn().await?;
        conn.open_transaction();
        let done = async {
            let fresh = insert_rows_sqlite(&mut conn, "BEGIN IMMEDIATE;", rows).await?;
            let kept = kept(records, &fresh);
            let (text, n) = kept_stanzas(records, &kept);
            let seq = if n > 0 {
                let sql = "INSERT INTO outbox (domain, created_at, stanza, stanzas) VALUES (?, ?, ?, ?) RETURNING seq; COMMIT";
                Some(push_row(&mut conn, sql, domain, text, n).await?)
            } else {
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                None
            };
            Ok(Recorded { seq, kept })
        }
        .await;
        if done.is_err() {
            rollback(&mut conn).await;
        }
        conn.closed_transaction();
        done
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
            .execute(&mut *self.write.conn().await?)
            .await?
            .rows_affected();
        }
        Ok(done)
    }

    /// The server acknowledged the first `n` stanzas of a row not yet complete.
    pub async fn outbox_ack_part(&self, domain: &str, seq: i64, n: i64) -> Result<()> {
        sqlx::query("UPDATE outbox SET acked = $3 WHERE domain = $1 AND seq = $2 AND acked < $3")
            .bind(domain)
            .bind(seq)
            .bind(n)
            .execute(&mut *self.write.conn().await?)
            .await?;
        Ok(())
    }

    /// What is still unacknowledged, oldest first: re-sent after a reconnect.
    pub async fn outbox_pending(&self, domain: &str) -> Result<Vec<OutboxEntry>> {
        let rows =
            sqlx::query("SELECT seq, stanza, acked FROM outbox WHERE domain = $1 ORDER BY seq")
                .bind(domain)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEntry {
                    seq: r.try_get("seq")?,
                    stanzas: r.try_get("stanza")?,
                    acked: r.try_get("acked")?,
                })
            })
            .collect()
    }

    pub async fn outbox_depth(&self) -> Result<i64> {
        let row = sqlx::query("SELECT CAST(COALESCE(SUM(stanzas), 0) AS BIGINT) AS n FROM outbox")
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
            let mut seqs = Vec::new();
            for pair in stanzas.chunks(2) {
                let r = s
                    .record_batch("a.example", &push(pair))
                    .await
                    .expect("push");
                assert_eq!(r.kept, [true]);
                seqs.push(r.seq.expect("no rows: always queued"));
            }
            let other = s
                .record_batch("b.example", &push(&["<x/>".to_string()]))
                .await
                .expect("push other domain");
            assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(s.outbox_depth().await.expect("depth"), 6);
            assert_eq!(s.outbox_ack("a.example", &seqs[..1]).await.expect("ack"), 1);
            assert_eq!(
                s.outbox_ack("b.example", &seqs[1..])
                    .await
                    .expect("other domain untouched"),
                0
            );
            let left: Vec<String> = s
                .outbox_pending("a.example")
                .await
                .expect("pending")
                .into_iter()
                .map(|e| e.stanzas)
                .collect();
            assert_eq!(left, [stanzas[2..4].concat(), stanzas[4].clone()]);
            assert_eq!(s.outbox_depth().await.expect("depth"), 4);
            // nothing to keep: no row
            let none = s
                .record_batch(
                    "a.example",
                    &[Record::<String> {
                        rows: &[],
                        stanzas: &[],
                    }],
                )
                .await
                .expect("empty");
            assert_eq!((none.seq, none.kept), (None, vec![true]));
            assert!(other.seq > seqs.last().copied());
        }
    }
}
