use super::{now_ms, opt_str, Result, Store};
use causeway_api::{NetworkId, RemoteUserId, UserInfo};
use sqlx::Row;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

/// What each puppet row holds, as hashes: (network, user) -> (jid, name, avatar, bot). A
/// write that would change nothing is skipped. Bounded: forgotten at this many entries.
#[derive(Clone, Debug, Default)]
pub(super) struct Written(Arc<Mutex<HashMap<u64, u64>>>);

const WRITTEN_MAX: usize = 100_000;

fn hash_of(v: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

impl Written {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A remote user's XMPP face.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PuppetRow {
    pub remote_user: RemoteUserId,
    pub jid_local: String,
    pub display_name: String,
    pub avatar: Option<String>,
    pub is_bot: bool,
}

impl Store {
    /// Insert a puppet on first sight, refresh its name and avatar afterwards (a write only
    /// when they changed since this store last wrote them).
    pub async fn upsert_puppet(
        &self,
        network: &NetworkId,
        user: &UserInfo,
        jid_local: &str,
    ) -> Result<()> {
        let key = hash_of((network.as_str(), user.id.as_str()));
        let value = hash_of((jid_local, &user.display_name, &user.avatar_url, user.is_bot));
        if self.puppets.lock().get(&key) == Some(&value) {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO puppet (network, remote_user, jid_local, display_name, avatar, is_bot, synced_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (network, remote_user) DO UPDATE SET display_name = $4, avatar = $5, synced_at = $7",
        )
        .bind(network.as_str())
        .bind(user.id.as_str())
        .bind(jid_local)
        .bind(&user.display_name)
        .bind(user.avatar_url.as_deref())
        .bind(i64::from(user.is_bot))
        .bind(now_ms())
        .execute(&mut *self.write.conn().await?)
        .await?;
        let mut written = self.puppets.lock();
        if written.len() >= WRITTEN_MAX {
            written.clear();
        }
        written.insert(key, value);
        Ok(())
    }

    pub async fn puppet(
        &self,
        network: &NetworkId,
        user: &RemoteUserId,
    ) -> Result<Option<PuppetRow>> {
        let row = sqlx::query(
            "SELECT remote_user, jid_local, display_name, avatar, is_bot FROM puppet
             WHERE network = $1 AND remote_user = $2",
        )
        .bind(network.as_str())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(PuppetRow {
            remote_user: RemoteUserId::new(r.try_get::<String, _>("remote_user")?),
            jid_local: r.try_get("jid_local")?,
            display_name: r.try_get("display_name")?,
            avatar: opt_str(&r, "avatar")?,
            is_bot: r.try_get::<i64, _>("is_bot")? != 0,
        }))
    }

    pub async fn count_puppets(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM puppet")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn puppets_upsert() {
        let _g = testing::PG_LOCK.lock().await;
        for s in testing::stores().await {
            let net = NetworkId::new("demo");
            let mut u = UserInfo {
                id: RemoteUserId::new("U1"),
                display_name: "Ann".into(),
                avatar_url: None,
                is_bot: false,
            };
            s.upsert_puppet(&net, &u, "u1").await.expect("insert");
            u.display_name = "Anne".into();
            s.upsert_puppet(&net, &u, "u1").await.expect("update");
            let p = s.puppet(&net, &u.id).await.expect("q").expect("found");
            assert_eq!(
                (p.display_name.as_str(), p.jid_local.as_str(), p.is_bot),
                ("Anne", "u1", false)
            );
            assert!(s
                .puppet(&net, &RemoteUserId::new("U2"))
                .await
                .expect("q")
                .is_none());
            assert_eq!(s.count_puppets().await.expect("count"), 1);
            // unchanged values are not written again; a change back is
            for (name, avatar) in [
                ("Anne", None),
                ("Ann", None),
                ("Ann", Some("https://cdn.example/a.png")),
                ("Ann", Some("https://cdn.example/a.png")),
                ("Ann", None),
            ] {
                u.display_name = name.into();
                u.avatar_url = avatar.map(String::from);
                s.upsert_puppet(&net, &u, "u1").await.expect("upsert");
                let p = s.puppet(&net, &u.id).await.expect("q").expect("found");
                assert_eq!(
                    (p.display_name.as_str(), p.avatar.as_deref()),
                    (name, avatar)
                );
            }
            // the skip is real: a row changed behind the store's back stays as it is
            sqlx::query("UPDATE puppet SET display_name = 'elsewhere'")
                .execute(&s.pool)
                .await
                .expect("update");
            s.upsert_puppet(&net, &u, "u1").await.expect("upsert");
            let p = s.puppet(&net, &u.id).await.expect("q").expect("found");
            assert_eq!(p.display_name, "elsewhere");
        }
    }
}
