use super::{Result, Store};
use causeway_api::RemoteMessageId;
use sqlx::Row;

impl Store {
    /// The catch-up point after downtime: the remote id of the last message stored in a
    /// portal (stored = on its way to XMPP, through the outbox). Derived from the message
    /// table, so storing a message needs no second write, and a late duplicate (not stored)
    /// cannot move it back.
    pub async fn cursor(&self, portal: i64) -> Result<Option<RemoteMessageId>> {
        let row = sqlx::query(
            "SELECT remote_id FROM message WHERE portal_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(portal)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>("remote_id"))
            .transpose()?
            .map(RemoteMessageId::new))
    }
}
