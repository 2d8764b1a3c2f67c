//! What happens to messages after they are stored (corrections, retractions, reactions), and
//! who is in a room (kept so a restart does not forget joined XMPP sessions).

use super::{Result, Store};
use causeway_api::RemoteMessageId;
use sqlx::{Connection, Row};

/// An XMPP session joined to a portal's room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OccupantRow {
    pub session: String,
    pub bare: String,
    pub nick: String,
}

impl Store {
    /// A correction: the message's text is now `body` (archive and later replies show it).
    pub async fn set_body(&self, portal: i64, stanza_id: &str, body: &str) -> Result<()> {
        sqlx::query(
            "UPDATE message SET body = $3 WHERE portal_id = $1 AND stanza_id = $2 AND part = 0",
        )
        .bind(portal)
        .bind(stanza_id)
        .bind(body)
        .execute(&mut *self.write.conn().await?)
        .await?;
        Ok(())
    }

    /// A retraction: the text is forgotten, a tombstone stays in the archive.
    pub async fn set_retracted(&self, portal: i64, stanza_id: &str, at: i64) -> Result<()> {
        let mut conn = self.write.conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "UPDATE message SET body = NULL, retracted_at = $3 WHERE portal_id = $1 AND stanza_id = $2",
        )
        .bind(portal)
        .bind(stanza_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM reaction WHERE portal_id = $1 AND remote_id IN
             (SELECT remote_id FROM message WHERE portal_id = $1 AND stanza_id = $2)",
        )
        .bind(portal)
        .bind(stanza_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The remote ids of every part of a message, first part first.
    pub async fn message_parts(
        &self,
        portal: i64,
        stanza_id: &str,
    ) -> Result<Vec<RemoteMessageId>> {
        let rows = sqlx::query(
            "SELECT remote_id FROM message WHERE portal_id = $1 AND stanza_id = $2 ORDER BY part",
        )
        .bind(portal)
        .bind(stanza_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(RemoteMessageId::new(r.try_get::<String, _>("remote_id")?)))
            .collect()
    }

    /// One sender's reactions on a message, in the order they were added.
    pub async fn reactions(
        &self,
        portal: i64,
        remote_id: &str,
        sender: &str,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT emoji FROM reaction WHERE portal_id = $1 AND remote_id = $2 AND sender = $3
             ORDER BY added_at, emoji",
        )
        .bind(portal)
        .bind(remote_id)
        .bind(sender)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("emoji"))
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Who has reactions on a message.
    pub async fn reaction_senders(&self, portal: i64, remote_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT sender FROM reaction WHERE portal_id = $1 AND remote_id = $2
             ORDER BY sender",
        )
        .bind(portal)
        .bind(remote_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("sender"))
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Replace one sender's reactions on a message with `emojis`.
    pub async fn set_reactions(
        &self,
        portal: i64,
        remote_id: &str,
        sender: &str,
        emojis: &[String],
    ) -> Result<()> {
        let mut conn = self.write.conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM reaction WHERE portal_id = $1 AND remote_id = $2 AND sender = $3")
            .bind(portal)
            .bind(remote_id)
            .bind(sender)
            .execute(&mut *tx)
            .await?;
        for (i, e) in emojis.iter().enumerate() {
            sqlx::query(
                "INSERT INTO reaction (portal_id, remote_id, sender, emoji, added_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(portal)
            .bind(remote_id)
            .bind(sender)
            .bind(e.as_str())
            .bind(i as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Retention: texts of messages sent before `cutoff` (Unix ms) are dropped; the rows stay
    /// so ids keep resolving.
    pub async fn forget_texts_before(&self, cutoff: i64) -> Result<u64> {
        let done =
            sqlx::query("UPDATE message SET body = NULL WHERE sent_at < $1 AND body IS NOT NULL")
                .bind(cutoff)
                .execute(&mut *self.write.conn().await?)
                .await?;
        Ok(done.rows_affected())
    }

    pub async fn occupants(&self, portal: i64) -> Result<Vec<OccupantRow>> {
        let rows = sqlx::query(
            "SELECT session, bare, nick FROM occupant WHERE portal_id = $1 ORDER BY session",
        )
        .bind(portal)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OccupantRow {
                    session: r.try_get("session")?,
                    bare: r.try_get("bare")?,
                    nick: r.try_get("nick")?,
                })
            })
            .collect()
    }

    pub async fn save_occupant(&self, portal: i64, o: &OccupantRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO occupant (portal_id, session, bare, nick) VALUES ($1, $2, $3, $4)
             ON CONFLICT (portal_id, session) DO UPDATE SET bare = $3, nick = $4",
        )
        .bind(portal)
        .bind(&o.session)
        .bind(&o.bare)
        .bind(&o.nick)
        .execute(&mut *self.write.conn().await?)
        .await?;
        Ok(())
    }

    pub async fn remove_occupant(&self, portal: i64, session: &str) -> Result<()> {
        sqlx::query("DELETE FROM occupant WHERE portal_id = $1 AND session = $2")
            .bind(portal)
            .bind(session)
            .execute(&mut *self.write.conn().await?)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{testing, MessageRow, Record};
    use causeway_api::RemoteMessageId;

    #[tokio::test]
    async fn corrections_retractions_reactions_and_occupants() {
        let _g = testing::PG_LOCK.lock().await;
        for s in testing::stores().await {
            let p = testing::portal(&s, "changes").await;
            let row = MessageRow {
                portal_id: p.id,
                remote_id: RemoteMessageId::new("r1"),
                part: 0,
                stanza_id: "r1".into(),
                origin_id: None,
                xmpp_id: None,
                sender: "alice".into(),
                sender_nick: "Alice".into(),
                from_xmpp: false,
                body: Some("first".into()),
                reply_to: None,
                sent_at: 5,
            };
            s.record_batch(
                "gw",
                &[Record::<String> {
                    rows: &[row],
                    stanzas: &[],
                }],
            )
            .await
            .expect("store");
            s.set_body(p.id, "r1", "second").await.expect("edit");
            let m = s.message_by_stanza_id(p.id, "r1").await.expect("q");
            assert_eq!(m.and_then(|m| m.body), Some("second".into()));

            let set = |v: &[&str]| v.iter().map(|e| e.to_string()).collect::<Vec<_>>();
            s.set_reactions(p.id, "r1", "bob", &set(&["🎉", "👍"]))
                .await
                .expect("react");
            s.set_reactions(p.id, "r1", "carol", &set(&["👍"]))
                .await
                .expect("react");
            assert_eq!(
                s.reactions(p.id, "r1", "bob").await.expect("q"),
                set(&["🎉", "👍"])
            );
            s.set_reactions(p.id, "r1", "bob", &set(&["👍"]))
                .await
                .expect("react");
            assert_eq!(
                s.reactions(p.id, "r1", "bob").await.expect("q"),
                set(&["👍"])
            );

            assert_eq!(s.forget_texts_before(5).await.expect("retention"), 0);
            s.set_retracted(p.id, "r1", 9).await.expect("retract");
            let m = s.message_by_stanza_id(p.id, "r1").await.expect("q");
            assert_eq!(m.map(|m| m.body), Some(None));
            assert!(s
                .reactions(p.id, "r1", "carol")
                .await
                .expect("q")
                .is_empty());

            let o = super::OccupantRow {
                session: "u@x/r".into(),
                bare: "u@x".into(),
                nick: "U".into(),
            };
            s.save_occupant(p.id, &o).await.expect("save");
            s.save_occupant(p.id, &o).await.expect("save twice");
            assert_eq!(s.occupants(p.id).await.expect("q"), vec![o.clone()]);
            s.remove_occupant(p.id, &o.session).await.expect("rm");
            assert!(s.occupants(p.id).await.expect("q").is_empty());
        }
    }
}
