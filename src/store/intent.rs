//! Messages about to be sent to a network, by their origin-id (migration 0011).

use super::{now_ms, Result, Store};
use sqlx::Row;

impl Store {
    /// Note that `sender`'s message `origin_id` is being sent with `txn`; false when one
    /// with this origin-id was noted before (it is left as it was).
    pub async fn add_intent(
        &self,
        portal: i64,
        sender: &str,
        origin_id: &str,
        txn: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO intent (portal_id, sender, origin_id, txn, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (portal_id, sender, origin_id) DO NOTHING",
        )
        .bind(portal)
        .bind(sender)
        .bind(origin_id)
        .bind(txn)
        .bind(now_ms())
        .execute(&mut *self.write.conn().await?)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The transaction a message with this origin-id was sent with, if it was.
    pub async fn intent(
        &self,
        portal: i64,
        sender: &str,
        origin_id: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT txn FROM intent WHERE portal_id = $1 AND sender = $2 AND origin_id = $3",
        )
        .bind(portal)
        .bind(sender)
        .bind(origin_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("txn")).transpose()?)
    }

    /// Forget intents older than `before_ms` (clients re-send within minutes).
    pub async fn forget_intents_before(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM intent WHERE created_at < $1")
            .bind(before_ms)
            .execute(&mut *self.write.conn().await?)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing;

    #[tokio::test]
    async fn intents_by_origin_id() {
        let _g = testing::PG_LOCK.lock().await;
        for s in testing::stores().await {
            let p = testing::portal(&s, "intents").await;
            assert_eq!(s.intent(p.id, "a@x", "o1").await.expect("read"), None);
            assert!(s.add_intent(p.id, "a@x", "o1", "cw1").await.expect("add"));
            assert!(!s
                .add_intent(p.id, "a@x", "o1", "cw2")
                .await
                .expect("again: kept as it was"));
            assert_eq!(
                s.intent(p.id, "a@x", "o1").await.expect("read").as_deref(),
                Some("cw1")
            );
            assert_eq!(
                s.intent(p.id, "b@x", "o1").await.expect("read"),
                None,
                "per sender"
            );
            assert!(
                s.forget_intents_before(super::now_ms() + 1)
                    .await
                    .expect("forget")
                    >= 1
            );
            assert_eq!(s.intent(p.id, "a@x", "o1").await.expect("read"), None);
        }
    }
}
