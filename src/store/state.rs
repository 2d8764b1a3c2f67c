//! Adapters' own small state (`causeway_api::KvStore`), one key space per network.

use super::{Result, Store};
use async_trait::async_trait;
use causeway_api::{KvStore, NetworkError, NetworkId};
use sqlx::Row;

impl Store {
    pub async fn state_get(&self, network: &NetworkId, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM adapter_state WHERE network = $1 AND key = $2")
            .bind(network.as_str())
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Insert or replace; with `only_new`, an existing key is left as it is. True when stored.
    /// `expires_at` (ms): when the key may be forgotten (None: never).
    pub async fn state_put(
        &self,
        network: &NetworkId,
        key: &str,
        value: &str,
        only_new: bool,
        expires_at: Option<i64>,
    ) -> Result<bool> {
        let sql = if only_new {
            "INSERT INTO adapter_state (network, key, value, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (network, key) DO NOTHING"
        } else {
            "INSERT INTO adapter_state (network, key, value, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (network, key) DO UPDATE SET value = $3, expires_at = $4"
        };
        let done = sqlx::query(sql)
            .bind(network.as_str())
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .execute(&mut *self.write.conn().await?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forget adapters' state whose time is over; how many keys.
    pub async fn forget_expired_state(&self, now_ms: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM adapter_state WHERE expires_at IS NOT NULL AND expires_at < $1",
        )
        .bind(now_ms)
        .execute(&mut *self.write.conn().await?)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn state_delete(&self, network: &NetworkId, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM adapter_state WHERE network = $1 AND key = $2")
            .bind(network.as_str())
            .bind(key)
            .execute(&mut *self.write.conn().await?)
            .await?;
        Ok(())
    }
}

/// The store as one network's `KvStore`.
pub struct NetworkState {
    pub store: Store,
    pub network: NetworkId,
}

fn err(e: super::StoreError) -> NetworkError {
    NetworkError::Other(format!("store: {e}"))
}

#[async_trait]
impl KvStore for NetworkState {
    async fn get(&self, key: &str) -> std::result::Result<Option<String>, NetworkError> {
        self.store.state_get(&self.network, key).await.map_err(err)
    }
    async fn put(&self, key: &str, value: &str) -> std::result::Result<(), NetworkError> {
        self.store
            .state_put(&self.network, key, value, false, None)
            .await
            .map(|_| ())
            .map_err(err)
    }
    async fn put_for(
        &self,
        key: &str,
        value: &str,
        keep: std::time::Duration,
    ) -> std::result::Result<(), NetworkError> {
        let keep = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX / 2);
        let at = super::now_ms().saturating_add(keep);
        self.store
            .state_put(&self.network, key, value, false, Some(at))
            .await
            .map(|_| ())
            .map_err(err)
    }
    async fn put_new(&self, key: &str, value: &str) -> std::result::Result<bool, NetworkError> {
        self.store
            .state_put(&self.network, key, value, true, None)
            .await
            .map_err(err)
    }
    async fn delete(&self, key: &str) -> std::result::Result<(), NetworkError> {
        self.store
            .state_delete(&self.network, key)
            .await
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn adapter_state_per_network() {
        let _g = super::super::testing::PG_LOCK.lock().await;
        for s in super::super::testing::stores().await {
            let a = NetworkState {
                store: s.clone(),
                network: NetworkId::new("matrix"),
            };
            let b = NetworkState {
                store: s.clone(),
                network: NetworkId::new("discord"),
            };
            assert_eq!(a.get("txn:1").await.expect("get"), None);
            assert!(a.put_new("txn:1", "done").await.expect("new"));
            assert!(!a.put_new("txn:1", "again").await.expect("not new"));
            assert_eq!(a.get("txn:1").await.expect("get").as_deref(), Some("done"));
            assert_eq!(b.get("txn:1").await.expect("other network"), None);
            a.put("txn:1", "changed").await.expect("put");
            assert_eq!(
                a.get("txn:1").await.expect("get").as_deref(),
                Some("changed")
            );
            a.delete("txn:1").await.expect("delete");
            assert_eq!(a.get("txn:1").await.expect("get"), None);
            // kept for a while: forgotten once its time is over, the rest stays
            let day = std::time::Duration::from_secs(86_400);
            a.put_for("txn:2", "done", day).await.expect("put_for");
            a.put("puppet:x", "kept").await.expect("put");
            let later = super::super::now_ms() + 2 * 86_400_000;
            assert_eq!(
                s.forget_expired_state(super::super::now_ms())
                    .await
                    .expect("prune"),
                0
            );
            assert!(s.forget_expired_state(later).await.expect("prune") >= 1);
            assert_eq!(a.get("txn:2").await.expect("get"), None);
            assert_eq!(
                a.get("puppet:x").await.expect("get").as_deref(),
                Some("kept")
            );
            // a key put for ever again is kept for ever
            a.put_for("txn:3", "x", day).await.expect("put_for");
            a.put("txn:3", "y").await.expect("put");
            s.forget_expired_state(later).await.expect("prune");
            assert_eq!(a.get("txn:3").await.expect("get").as_deref(), Some("y"));
            a.delete("puppet:x").await.expect("delete");
            a.delete("txn:3").await.expect("delete");
        }
    }
}
