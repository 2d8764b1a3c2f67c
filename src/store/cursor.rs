use super::{Result, Store};
use causeway_api::RemoteMessageId;
use sqlx::Row;

impl Store {
    /// The last remote message delivered in a portal: the catch-up point after downtime.
    pub async fn cursor(&self, portal: i64) -> Result<Option<RemoteMessageId>> {
        let row = sqlx::query("SELECT remote_id FROM cursor WHERE portal_id = $1")
            .bind(portal)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>("remote_id"))
            .transpose()?
            .map(RemoteMessageId::new))
    }
}

/// Move a portal's cursor; run inside the transaction that stores the messages.
pub(super) async fn set_cursor(
    conn: &mut sqlx::AnyConnection,
    portal: i64,
    remote: &RemoteMessageId,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO cursor (portal_id, remote_id, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (portal_id) DO UPDATE SET remote_id = $2, updated_at = $3",
    )
    .bind(portal)
    .bind(remote.as_str())
    .bind(super::now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
