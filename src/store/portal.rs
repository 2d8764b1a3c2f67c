use super::{opt_str, Result, Store, StoreError};
use causeway_api::{LoginId, NetworkId, RemoteRoomId, RoomKey, RoomKind};
use sqlx::{any::AnyRow, Row};

/// A bridged room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalRow {
    pub id: i64,
    pub network: NetworkId,
    pub key: RoomKey,
    pub jid_local: String,
    pub kind: RoomKind,
    /// For a direct conversation: the XMPP user it belongs to.
    pub xmpp_user: Option<String>,
    pub name: String,
    pub topic: Option<String>,
    /// The linked space this room belongs to.
    pub space: Option<String>,
    /// The room's picture on the network (XEP-0486 room avatar).
    pub avatar: Option<String>,
    pub access: Access,
}

/// Who may use a portal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Anyone the gateway serves.
    #[default]
    Open,
    /// A room not everyone on the network may see, opted in by an admin: its members only.
    Members,
    /// Not bridged (any more): its space was unlinked, the network deleted it, or it became
    /// private without an opt-in. Not joinable, not listed, its archive not served.
    Closed,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Open => "open",
            Access::Members => "members",
            Access::Closed => "closed",
        }
    }
}

fn kind_str(k: RoomKind) -> &'static str {
    match k {
        RoomKind::Channel => "channel",
        RoomKind::Group => "group",
        RoomKind::Direct => "direct",
    }
}

fn from_row(r: &AnyRow) -> Result<PortalRow> {
    let receiver: String = r.try_get("receiver")?;
    let kind = match r.try_get::<String, _>("kind")?.as_str() {
        "channel" => RoomKind::Channel,
        "group" => RoomKind::Group,
        "direct" => RoomKind::Direct,
        other => return Err(StoreError::Corrupt(format!("portal kind {other}"))),
    };
    Ok(PortalRow {
        id: r.try_get("id")?,
        network: NetworkId::new(r.try_get::<String, _>("network")?),
        key: RoomKey {
            room: RemoteRoomId::new(r.try_get::<String, _>("room_id")?),
            receiver: (!receiver.is_empty()).then(|| LoginId::new(receiver)),
        },
        jid_local: r.try_get("jid_local")?,
        kind,
        xmpp_user: opt_str(r, "xmpp_user")?,
        name: r.try_get("name")?,
        topic: opt_str(r, "topic")?,
        space: opt_str(r, "space_id")?,
        avatar: opt_str(r, "avatar")?,
        access: match r.try_get::<String, _>("access")?.as_str() {
            "open" => Access::Open,
            "members" => Access::Members,
            "closed" => Access::Closed,
            other => return Err(StoreError::Corrupt(format!("portal access {other}"))),
        },
    })
}

const COLS: &str =
    "id, network, room_id, receiver, jid_local, kind, xmpp_user, name, topic, space_id, avatar, access";

impl Store {
    /// Insert or refresh a portal (name, topic); returns it with its id.
    pub async fn upsert_portal(&self, p: &PortalRow) -> Result<PortalRow> {
        let receiver = p.key.receiver.as_ref().map(|r| r.as_str()).unwrap_or("");
        let row = sqlx::query(sql!(
            "INSERT INTO portal (network, room_id, receiver, jid_local, kind, xmpp_user, name, topic, space_id, avatar, access)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (network, room_id, receiver) DO UPDATE SET name = $7, topic = $8, space_id = $9, avatar = $10, access = $11
             RETURNING {COLS}"
        ))
        .bind(p.network.as_str())
        .bind(p.key.room.as_str())
        .bind(receiver)
        .bind(&p.jid_local)
        .bind(kind_str(p.kind))
        .bind(p.xmpp_user.as_deref())
        .bind(&p.name)
        .bind(p.topic.as_deref())
        .bind(p.space.as_deref())
        .bind(p.avatar.as_deref())
        .bind(p.access.as_str())
        .fetch_one(&mut *self.write.conn().await?)
        .await?;
        from_row(&row)
    }

    pub async fn portal_by_jid(
        &self,
        network: &NetworkId,
        jid_local: &str,
    ) -> Result<Option<PortalRow>> {
        let row = sqlx::query(sql!(
            "SELECT {COLS} FROM portal WHERE network = $1 AND jid_local = $2"
        ))
        .bind(network.as_str())
        .bind(jid_local)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn portal_by_room(
        &self,
        network: &NetworkId,
        key: &RoomKey,
    ) -> Result<Option<PortalRow>> {
        let receiver = key.receiver.as_ref().map(|r| r.as_str()).unwrap_or("");
        let row = sqlx::query(sql!(
            "SELECT {COLS} FROM portal WHERE network = $1 AND room_id = $2 AND receiver = $3"
        ))
        .bind(network.as_str())
        .bind(key.room.as_str())
        .bind(receiver)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Set who may use a portal.
    pub async fn set_portal_access(&self, id: i64, access: Access) -> Result<()> {
        sqlx::query("UPDATE portal SET access = $1 WHERE id = $2")
            .bind(access.as_str())
            .bind(id)
            .execute(&mut *self.write.conn().await?)
            .await?;
        Ok(())
    }

    /// Open shared (non-direct) portals of a network ordered by JID, after `after`, at most
    /// `limit`: what room listings show (members-only and closed rooms are not listed).
    pub async fn list_portals(
        &self,
        network: &NetworkId,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PortalRow>> {
        let rows = sqlx::query(sql!(
            "SELECT {COLS} FROM portal WHERE network = $1 AND kind <> 'direct' AND access = 'open'
             AND jid_local > $2 ORDER BY jid_local LIMIT $3"
        ))
        .bind(network.as_str())
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Portals that must run from start-up so nothing produced during downtime waits for
    /// the next event: rooms with joined XMPP sessions, and 1:1 conversations.
    pub async fn portals_to_resume(&self, network: &NetworkId) -> Result<Vec<PortalRow>> {
        let rows = sqlx::query(sql!(
            "SELECT {COLS} FROM portal WHERE network = $1 AND access <> 'closed' AND
             (kind = 'direct' OR id IN (SELECT portal_id FROM occupant)) ORDER BY id"
        ))
        .bind(network.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The rooms of a linked space, by name (closed ones left out).
    pub async fn portals_in_space(
        &self,
        network: &NetworkId,
        space: &str,
    ) -> Result<Vec<PortalRow>> {
        let rows = sqlx::query(sql!(
            "SELECT {COLS} FROM portal WHERE network = $1 AND space_id = $2 AND access <> 'closed'
             ORDER BY name, id"
        ))
        .bind(network.as_str())
        .bind(space)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn count_portals(&self, network: &NetworkId) -> Result<i64> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM portal WHERE network = $1 AND kind <> 'direct' AND access = 'open'")
                .bind(network.as_str())
                .fetch_one(&self.pool)
                .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn row(room: &str, local: &str) -> PortalRow {
        PortalRow {
            id: 0,
            network: NetworkId::new("demo"),
            key: RoomKey::shared(room),
            jid_local: local.into(),
            kind: RoomKind::Channel,
            xmpp_user: None,
            name: room.into(),
            topic: None,
            space: None,
            avatar: None,
            access: Access::Open,
        }
    }

    #[tokio::test]
    async fn portals_upsert_find_and_page() {
        let _g = testing::PG_LOCK.lock().await;
        for s in testing::stores().await {
            let net = NetworkId::new("demo");
            let a = s
                .upsert_portal(&row("Room-A", "room-a"))
                .await
                .expect("insert");
            let mut renamed = row("Room-A", "room-a");
            renamed.name = "renamed".into();
            let a2 = s.upsert_portal(&renamed).await.expect("upsert");
            assert_eq!(a.id, a2.id);
            assert_eq!(a2.name, "renamed");
            for i in 0..5 {
                s.upsert_portal(&row(&format!("r{i}"), &format!("r{i}")))
                    .await
                    .expect("insert");
            }
            assert_eq!(
                s.portal_by_jid(&net, "room-a")
                    .await
                    .expect("q")
                    .map(|p| p.id),
                Some(a.id)
            );
            assert_eq!(
                s.portal_by_room(&net, &RoomKey::shared("Room-A"))
                    .await
                    .expect("q")
                    .map(|p| p.id),
                Some(a.id)
            );
            assert!(s.portal_by_jid(&net, "nope").await.expect("q").is_none());
            let page1 = s.list_portals(&net, None, 4).await.expect("page");
            let page2 = s
                .list_portals(&net, Some(&page1[3].jid_local), 4)
                .await
                .expect("page");
            let all: Vec<_> = page1
                .iter()
                .chain(&page2)
                .map(|p| p.jid_local.clone())
                .collect();
            assert_eq!(all, ["r0", "r1", "r2", "r3", "r4", "room-a"]);
            assert_eq!(s.count_portals(&net).await.expect("count"), 6);
        }
    }
}
