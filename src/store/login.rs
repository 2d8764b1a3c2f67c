//! Registered XMPP users and their logins on a network.

use super::{Result, Store};
use causeway_api::{LoginId, LoginRecord, NetworkId, Secret};
use sqlx::{Connection, Row};

const LOGIN_COLS: &str = "login_id, user_jid, remote_name, secrets";

impl Store {
    fn login_row(&self, r: &sqlx::any::AnyRow) -> Result<LoginRecord> {
        let stored: String = r.try_get("secrets")?;
        Ok(LoginRecord {
            login: LoginId::new(r.try_get::<String, _>("login_id")?),
            xmpp_user: Some(r.try_get("user_jid")?),
            remote_name: r.try_get("remote_name")?,
            secrets: Secret::new(self.sealer.open(&stored)?),
        })
    }

    /// Seal the credentials kept in clear by a version before sealing.
    pub(super) async fn seal_logins(&self) -> Result<()> {
        let rows = sqlx::query("SELECT network, login_id, secrets FROM user_login")
            .fetch_all(&self.pool)
            .await?;
        for r in rows {
            let stored: String = r.try_get("secrets")?;
            let plain = self.sealer.open(&stored)?;
            if crate::secrets::Sealer::is_sealed(&stored) {
                continue;
            }
            sqlx::query("UPDATE user_login SET secrets = $1 WHERE network = $2 AND login_id = $3")
                .bind(self.sealer.seal(&plain))
                .bind(r.try_get::<String, _>("network")?)
                .bind(r.try_get::<String, _>("login_id")?)
                .execute(&mut *self.write.conn().await?)
                .await?;
        }
        Ok(())
    }

    /// Keep a user's login (one per user and network; a new one replaces the old).
    pub async fn save_login(&self, network: &NetworkId, user: &str, l: &LoginRecord) -> Result<()> {
        let mut conn = self.write.conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO xmpp_user (jid, registered_at) VALUES ($1, $2) ON CONFLICT (jid) DO NOTHING",
        )
        .bind(user)
        .bind(super::now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM user_login WHERE network = $1 AND user_jid = $2")
            .bind(network.as_str())
            .bind(user)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO user_login (network, login_id, user_jid, remote_name, secrets, state)
             VALUES ($1, $2, $3, $4, $5, 'active')
             ON CONFLICT (network, login_id) DO UPDATE SET user_jid = $3, remote_name = $4, secrets = $5",
        )
        .bind(network.as_str())
        .bind(l.login.as_str())
        .bind(user)
        .bind(&l.remote_name)
        .bind(self.sealer.seal(l.secrets.expose()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn login_of(&self, network: &NetworkId, user: &str) -> Result<Option<LoginRecord>> {
        let row = sqlx::query(sql!(
            "SELECT {LOGIN_COLS} FROM user_login WHERE network = $1 AND user_jid = $2"
        ))
        .bind(network.as_str())
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|r| self.login_row(r)).transpose()
    }

    /// Every user login of a network (sessions to start).
    pub async fn logins(&self, network: &NetworkId) -> Result<Vec<LoginRecord>> {
        let rows = sqlx::query(sql!(
            "SELECT {LOGIN_COLS} FROM user_login
             WHERE network = $1 AND user_jid IS NOT NULL ORDER BY login_id"
        ))
        .bind(network.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.login_row(r)).collect()
    }

    /// Forget a user's login; returns it if there was one.
    pub async fn remove_login(
        &self,
        network: &NetworkId,
        user: &str,
    ) -> Result<Option<LoginRecord>> {
        let old = self.login_of(network, user).await?;
        sqlx::query("DELETE FROM user_login WHERE network = $1 AND user_jid = $2")
            .bind(network.as_str())
            .bind(user)
            .execute(&mut *self.write.conn().await?)
            .await?;
        Ok(old)
    }
}
