use super::{Result, Store};
use sqlx::Row;

/// A file Causeway serves again: where it came from, what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaRow {
    pub token: String,
    pub source: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    /// Hex SHA-1 of the bytes (XEP-0153 avatar hashes).
    pub sha1: String,
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<MediaRow> {
    Ok(MediaRow {
        token: r.try_get("token")?,
        source: r.try_get("source")?,
        name: r.try_get("name")?,
        content_type: r.try_get("content_type")?,
        size: r.try_get("size")?,
        sha1: r.try_get("sha1")?,
    })
}

impl Store {
    pub async fn media(&self, token: &str) -> Result<Option<MediaRow>> {
        let row = sqlx::query(
            "SELECT token, source, name, content_type, size, sha1 FROM media WHERE token = $1",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// A file already copied from this source.
    pub async fn media_by_source(&self, source: &str) -> Result<Option<MediaRow>> {
        let row = sqlx::query(
            "SELECT token, source, name, content_type, size, sha1 FROM media WHERE source = $1 LIMIT 1",
        )
        .bind(source)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Forget copies made before `before_ms` (at most `limit`); their tokens, whose files
    /// are to be removed.
    pub async fn forget_media_before(&self, before_ms: i64, limit: i64) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT token FROM media WHERE created_at < $1 LIMIT $2")
            .bind(before_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let tokens: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("token"))
            .collect::<std::result::Result<_, _>>()?;
        for t in &tokens {
            sqlx::query("DELETE FROM media WHERE token = $1")
                .bind(t)
                .execute(&mut *self.write.conn().await?)
                .await?;
        }
        Ok(tokens)
    }

    pub async fn add_media(&self, m: &MediaRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO media (token, source, name, content_type, size, sha1, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&m.token)
        .bind(&m.source)
        .bind(&m.name)
        .bind(&m.content_type)
        .bind(m.size)
        .bind(&m.sha1)
        .bind(super::now_ms())
        .execute(&mut *self.write.conn().await?)
        .await?;
        Ok(())
    }
}
