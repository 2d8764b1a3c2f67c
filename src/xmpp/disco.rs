//! Answers on the component domain itself: disco#info, paged room listing, version, ping;
//! and the room disco#info document.

use super::inbound::ServiceQuery;
use super::ns;
use super::outbound::{iq_result, Outgoing};
use super::{set_attr, Attrs};
use crate::store::{PortalRow, Store, StoreError};
use causeway_api::{Capabilities, NetworkId};
use tokio_xmpp::minidom::Element;

/// Default and largest page of the room listing.
const PAGE: usize = 50;

const DOMAIN_FEATURES: &[&str] = &[
    ns::DISCO_INFO,
    ns::DISCO_ITEMS,
    ns::MUC,
    ns::VERSION,
    ns::PING,
    ns::OCCUPANT_ID,
    ns::SID,
    ns::MAM,
    ns::REGISTER,
    ns::GATEWAY,
    ns::COMMANDS,
    "jid\\20escaping",
];

fn identity(category: &str, typ: &str, name: &str) -> Element {
    Element::builder("identity", ns::DISCO_INFO)
        .at("category", category)
        .at("type", typ)
        .at("name", name)
        .build()
}

fn feature(var: &str) -> Element {
    Element::builder("feature", ns::DISCO_INFO)
        .at("var", var)
        .build()
}

fn field(var: &str, value: &str) -> Element {
    Element::builder("field", ns::DATA)
        .at("var", var)
        .append(Element::builder("value", ns::DATA).append(value).build())
        .build()
}

pub struct ServiceCtx<'a> {
    pub network: &'a NetworkId,
    pub caps: &'a Capabilities,
    pub store: &'a Store,
}

pub async fn answer(
    ctx: &ServiceCtx<'_>,
    query: &ServiceQuery,
    from: &str,
    to: &str,
    id: &str,
) -> Result<Option<Outgoing>, StoreError> {
    let payload = match query {
        ServiceQuery::DiscoInfo { node: None } => {
            let mut q = Element::builder("query", ns::DISCO_INFO).build();
            q.append_child(identity(
                "gateway",
                ctx.network.as_str(),
                &ctx.caps.display_name,
            ));
            q.append_child(identity("conference", "text", &ctx.caps.display_name));
            for f in DOMAIN_FEATURES {
                q.append_child(feature(f));
            }
            Some(q)
        }
        ServiceQuery::DiscoItems {
            node: None,
            max,
            after,
        } => {
            let max = max.unwrap_or(PAGE).min(PAGE);
            let rows = ctx
                .store
                .list_portals(ctx.network, after.as_deref(), max as i64)
                .await?;
            let count = ctx.store.count_portals(ctx.network).await?;
            let mut q = Element::builder("query", ns::DISCO_ITEMS).build();
            for p in &rows {
                q.append_child(
                    Element::builder("item", ns::DISCO_ITEMS)
                        .at("jid", format!("{}@{to}", p.jid_local))
                        .at("name", p.name.as_str())
                        .build(),
                );
            }
            let mut set = Element::builder("set", ns::RSM).build();
            if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
                set.append_child(
                    Element::builder("first", ns::RSM)
                        .append(first.jid_local.as_str())
                        .build(),
                );
                set.append_child(
                    Element::builder("last", ns::RSM)
                        .append(last.jid_local.as_str())
                        .build(),
                );
            }
            set.append_child(
                Element::builder("count", ns::RSM)
                    .append(count.to_string())
                    .build(),
            );
            q.append_child(set);
            Some(q)
        }
        ServiceQuery::Version => Some(
            Element::builder("query", ns::VERSION)
                .append(
                    Element::builder("name", ns::VERSION)
                        .append("Causeway")
                        .build(),
                )
                .append(
                    Element::builder("version", ns::VERSION)
                        .append(env!("CARGO_PKG_VERSION"))
                        .build(),
                )
                .build(),
        ),
        ServiceQuery::Ping => None,
        _ => return Ok(None),
    };
    Ok(Some(iq_result(to, from, id, payload)))
}

/// What a room's disco#info tells besides its portal row.
pub struct RoomAbout<'a> {
    pub occupants: usize,
    pub caps: &'a Capabilities,
    /// xmpp: URI of the space node the room is in (XEP-0503 back-link).
    pub space: Option<String>,
    /// SHA-1 of the room's avatar (XEP-0486), when Causeway holds a copy.
    pub avatar_hash: Option<String>,
}

/// disco#info of a room (XEP-0045 6.4), with the muc#roominfo form.
pub fn room_info(
    room_jid: &str,
    to: &str,
    id: &str,
    portal: &PortalRow,
    about: &RoomAbout<'_>,
) -> Outgoing {
    let (occupants, caps, space) = (about.occupants, about.caps, about.space.as_deref());
    let mut q = Element::builder("query", ns::DISCO_INFO).build();
    q.append_child(identity("conference", "text", &portal.name));
    for f in [
        ns::MUC,
        "http://jabber.org/protocol/muc#stable_id",
        "http://jabber.org/protocol/muc#self-ping-optimization",
        ns::SID,
        ns::OCCUPANT_ID,
        "muc_persistent",
        "muc_open",
        "muc_nonanonymous",
        "muc_public",
        "muc_unmoderated",
        "muc_unsecured",
        ns::VCARD,
        ns::MAM,
        "urn:xmpp:mam:2#extended",
        ns::CHATSTATES,
        ns::MARKERS,
    ] {
        q.append_child(feature(f));
    }
    for (on, f) in [
        (caps.edits, ns::CORRECT),
        (caps.retractions, ns::RETRACT),
        (caps.retractions, ns::MODERATE),
        (caps.reactions, ns::REACTIONS),
        (caps.replies, ns::REPLY),
    ] {
        if on {
            q.append_child(feature(f));
        }
    }
    let mut form = Element::builder("x", ns::DATA).at("type", "result").build();
    let mut form_type = field("FORM_TYPE", "http://jabber.org/protocol/muc#roominfo");
    set_attr(&mut form_type, "type", "hidden");
    form.append_child(form_type);
    form.append_child(field(
        "muc#roominfo_description",
        portal.topic.as_deref().unwrap_or(""),
    ));
    form.append_child(field(
        "muc#roominfo_subject",
        portal.topic.as_deref().unwrap_or(""),
    ));
    form.append_child(field("muc#roominfo_occupants", &occupants.to_string()));
    form.append_child(field("muc#roomconfig_roomname", &portal.name));
    form.append_child(field("muc#roomconfig_allowpm", "none"));
    form.append_child(field("muc#roomconfig_changesubject", "0"));
    if let Some(link) = space {
        form.append_child(field("muc#roomconfig_pubsub", link));
    }
    if let Some(hash) = &about.avatar_hash {
        form.append_child(field("muc#roominfo_avatarhash", hash));
    }
    q.append_child(form);
    if let Some(link) = space {
        // XEP-0503 back-link to the space the room is in
        q.append_child(feature(ns::SPACES));
        let mut back = Element::builder("x", ns::DATA).at("type", "result").build();
        let mut form_type = field("FORM_TYPE", ns::SPACES);
        set_attr(&mut form_type, "type", "hidden");
        back.append_child(form_type);
        let mut parent = field("parent", link);
        set_attr(&mut parent, "label", "Space parent");
        back.append_child(parent);
        q.append_child(back);
    }
    if let (true, Some(max)) = (caps.reactions, caps.max_reactions_per_user) {
        let mut limits = Element::builder("x", ns::DATA).at("type", "result").build();
        let mut form_type = field("FORM_TYPE", "urn:xmpp:reactions:0:restrictions");
        set_attr(&mut form_type, "type", "hidden");
        limits.append_child(form_type);
        limits.append_child(field("max_reactions_per_user", &max.to_string()));
        q.append_child(limits);
    }
    iq_result(room_jid, to, id, Some(q))
}
