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
    pub async fn state_put(
        &self,
        network: &NetworkId,
        key: &str,
        value: &str,
        only_new: bool,
    ) -> Result<bool> {
        let sql = if only_new {
            "INSERT INTO adapter_state (network, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (network, key) DO NOTHING"
        } else {
            "INSERT INTO adapter_state (network, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (network, key) DO UPDATE SET value = $3"
        };
        let done = sqlx::query(sql)
            .bind(network.as_str())
            .bind(key)
            .bind(value)
            .execute(&mut *self.write.conn().await?)
            .await?;
        Ok(done.rows_affected() > 0)
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
            .state_put(&self.network, key, value, false)
            .await
            .map(|_| ())
            .map_err(err)
    }
    async fn put_new(&self, key: &str, value: &str) -> std::result::Result<bool, NetworkError> {
        self.store
            .state_put(&self.network, key, value, true)
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
        }
    }
}
