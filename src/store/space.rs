//! Linked spaces (XEP-0503 nodes) and who subscribed to them.

use super::{opt_str, Result, Store};
use causeway_api::NetworkId;
use sqlx::{Connection, Row};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceRow {
    pub id: String,
    pub name: String,
    pub avatar: Option<String>,
    pub parent: Option<String>,
}

fn space_row(r: &sqlx::any::AnyRow) -> Result<SpaceRow> {
    Ok(SpaceRow {
        id: r.try_get("space_id")?,
        name: r.try_get("name")?,
        avatar: opt_str(r, "avatar")?,
        parent: opt_str(r, "parent")?,
    })
}

impl Store {
    pub async fn upsert_space(&self, network: &NetworkId, s: &SpaceRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO space (network, space_id, name, avatar, parent) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (network, space_id) DO UPDATE SET name = $3, avatar = $4, parent = $5",
        )
        .bind(network.as_str())
        .bind(&s.id)
        .bind(&s.name)
        .bind(s.avatar.as_deref())
        .bind(s.parent.as_deref())
        .execute(&mut *self.write.conn().await?)
        .await?;
        Ok(())
    }

    pub async fn spaces(&self, network: &NetworkId) -> Result<Vec<SpaceRow>> {
        let rows = sqlx::query(
            "SELECT space_id, name, avatar, parent FROM space WHERE network = $1 ORDER BY space_id",
        )
        .bind(network.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(space_row).collect()
    }

    pub async fn space(&self, network: &NetworkId, id: &str) -> Result<Option<SpaceRow>> {
        let row = sqlx::query(
            "SELECT space_id, name, avatar, parent FROM space WHERE network = $1 AND space_id = $2",
        )
        .bind(network.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(space_row).transpose()
    }

    /// Unlink a space: its rooms leave it and are closed (their portals and history stay,
    /// closed across restarts until the space is linked again), its subscribers are
    /// forgotten. Returns whether it was linked.
    pub async fn remove_space(&self, network: &NetworkId, id: &str) -> Result<bool> {
        let mut conn = self.write.conn().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query("DELETE FROM space WHERE network = $1 AND space_id = $2")
            .bind(network.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM space_subscriber WHERE network = $1 AND space_id = $2")
            .bind(network.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE portal SET space_id = NULL, access = 'closed' WHERE network = $1 AND space_id = $2",
        )
            .bind(network.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn subscribers(&self, network: &NetworkId, space: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT jid FROM space_subscriber WHERE network = $1 AND space_id = $2 ORDER BY jid",
        )
        .bind(network.as_str())
        .bind(space)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("jid"))
            .collect::<std::result::Result<_, _>>()?)
    }

    /// The spaces a JID subscribed to.
    pub async fn subscribed_spaces(&self, network: &NetworkId, jid: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT space_id FROM space_subscriber WHERE network = $1 AND jid = $2 ORDER BY space_id",
        )
        .bind(network.as_str())
        .bind(jid)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("space_id"))
            .collect::<std::result::Result<_, _>>()?)
    }

    pub async fn set_subscribed(
        &self,
        network: &NetworkId,
        space: &str,
        jid: &str,
        on: bool,
    ) -> Result<()> {
        let q = if on {
            "INSERT INTO space_subscriber (network, space_id, jid) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM space_subscriber WHERE network = $1 AND space_id = $2 AND jid = $3"
        };
        sqlx::query(q)
            .bind(network.as_str())
            .bind(space)
            .bind(jid)
            .execute(&mut *self.write.conn().await?)
            .await?;
        Ok(())
    }
}
