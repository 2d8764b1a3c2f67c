//! Stanzas of the gateway's own services: registration (XEP-0077), address translation
//! (XEP-0100), ad-hoc commands (XEP-0050), presence of the gateway, and the spaces pubsub
//! service (XEP-0060 / XEP-0503). Built from plain data.

use super::forms::{self, Form};
use super::ns;
use super::outbound::{iq_result, Outgoing};
use super::{set_attr, Attrs};
use tokio_xmpp::minidom::Element;

fn text(name: &str, ns: &str, body: &str) -> Element {
    Element::builder(name, ns).append(body).build()
}

pub fn register_form(
    from: &str,
    to: &str,
    id: &str,
    instructions: &str,
    form: &Form,
    registered: bool,
) -> Outgoing {
    let mut q = Element::builder("query", ns::REGISTER).build();
    if registered {
        q.append_child(Element::builder("registered", ns::REGISTER).build());
    }
    q.append_child(text("instructions", ns::REGISTER, instructions));
    q.append_child(forms::element(form));
    iq_result(from, to, id, Some(q))
}

pub fn gateway_prompt(from: &str, to: &str, id: &str, desc: &str, prompt: &str) -> Outgoing {
    let q = Element::builder("query", ns::GATEWAY)
        .append(text("desc", ns::GATEWAY, desc))
        .append(text("prompt", ns::GATEWAY, prompt))
        .build();
    iq_result(from, to, id, Some(q))
}

pub fn gateway_jid(from: &str, to: &str, id: &str, jid: &str) -> Outgoing {
    let q = Element::builder("query", ns::GATEWAY)
        .append(text("jid", ns::GATEWAY, jid))
        .build();
    iq_result(from, to, id, Some(q))
}

/// disco#items of the commands node: (node, name) per command.
pub fn command_list(from: &str, to: &str, id: &str, commands: &[(&str, &str)]) -> Outgoing {
    let mut q = Element::builder("query", ns::DISCO_ITEMS)
        .at("node", ns::COMMANDS)
        .build();
    for (node, name) in commands {
        q.append_child(
            Element::builder("item", ns::DISCO_ITEMS)
                .at("jid", from)
                .at("node", *node)
                .at("name", *name)
                .build(),
        );
    }
    iq_result(from, to, id, Some(q))
}

/// What a command step answers.
#[derive(Clone, Debug, Default)]
pub struct CommandReply {
    pub node: String,
    pub sessionid: String,
    /// "executing" (a form follows) or "completed".
    pub completed: bool,
    pub form: Option<Form>,
    /// (type: info | warn | error, text)
    pub note: Option<(&'static str, String)>,
}

pub fn command_reply(from: &str, to: &str, id: &str, r: &CommandReply) -> Outgoing {
    let mut c = Element::builder("command", ns::COMMANDS)
        .at("node", r.node.as_str())
        .at("sessionid", r.sessionid.as_str())
        .at(
            "status",
            if r.completed {
                "completed"
            } else {
                "executing"
            },
        )
        .build();
    if !r.completed {
        c.append_child(
            Element::builder("actions", ns::COMMANDS)
                .at("execute", "complete")
                .append(Element::builder("complete", ns::COMMANDS).build())
                .build(),
        );
    }
    if let Some((typ, t)) = &r.note {
        let mut n = text("note", ns::COMMANDS, t);
        set_attr(&mut n, "type", *typ);
        c.append_child(n);
    }
    if let Some(f) = &r.form {
        c.append_child(forms::element(f));
    }
    iq_result(from, to, id, Some(c))
}

/// A presence of the gateway itself (available when `typ` is None).
pub fn presence(from: &str, to: &str, typ: Option<&str>) -> Outgoing {
    let mut el = Element::builder("presence", ns::STREAM)
        .at("from", from)
        .at("to", to)
        .build();
    if let Some(t) = typ {
        set_attr(&mut el, "type", t);
    }
    Outgoing {
        stanza: el.into(),
        durable: false,
    }
}

/// A contact's availability: available (with `<show>away</show>` when away) or unavailable,
/// with its status text.
pub fn availability(
    from: &str,
    to: &str,
    available: bool,
    away: bool,
    status: Option<&str>,
) -> Outgoing {
    let mut el = Element::builder("presence", ns::STREAM)
        .at("from", from)
        .at("to", to)
        .build();
    if !available {
        set_attr(&mut el, "type", "unavailable");
    }
    if away {
        el.append_child(Element::builder("show", ns::STREAM).append("away").build());
    }
    if let Some(s) = status {
        el.append_child(Element::builder("status", ns::STREAM).append(s).build());
    }
    Outgoing {
        stanza: el.into(),
        durable: false,
    }
}

/// One child of a space node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpaceItem {
    /// A room: item id = room JID.
    Room { jid: String, name: String },
    /// A nested space on this service.
    Space { service: String, node: String },
    /// The space's picture.
    Avatar { url: String },
}

fn item_element(i: &SpaceItem, item_ns: &str) -> Element {
    match i {
        SpaceItem::Room { jid, name } => Element::builder("item", item_ns)
            .at("id", jid.as_str())
            .append(
                Element::builder("conference", ns::BOOKMARKS)
                    .at("name", name.as_str())
                    .at("autojoin", "false")
                    .build(),
            )
            .build(),
        SpaceItem::Space { service, node } => Element::builder("item", item_ns)
            .at("id", format!("space:{node}"))
            .append(
                Element::builder("subscription", ns::PUBSUB_SUBSCRIPTION)
                    .at("server", service.as_str())
                    .at("node", node.as_str())
                    .build(),
            )
            .build(),
        SpaceItem::Avatar { url } => Element::builder("item", item_ns)
            .at("id", "urn:xmpp:spaces:avatar:metadata:0")
            .append(
                Element::builder("metadata", ns::AVATAR_METADATA)
                    .append(
                        Element::builder("info", ns::AVATAR_METADATA)
                            .at("url", url.as_str())
                            .build(),
                    )
                    .build(),
            )
            .build(),
    }
}

pub fn pubsub_items(from: &str, to: &str, id: &str, node: &str, items: &[SpaceItem]) -> Outgoing {
    let mut list = Element::builder("items", ns::PUBSUB)
        .at("node", node)
        .build();
    for i in items {
        list.append_child(item_element(i, ns::PUBSUB));
    }
    let p = Element::builder("pubsub", ns::PUBSUB).append(list).build();
    iq_result(from, to, id, Some(p))
}

pub fn pubsub_subscription(
    from: &str,
    to: &str,
    id: &str,
    node: &str,
    jid: &str,
    state: &str,
) -> Outgoing {
    let p = Element::builder("pubsub", ns::PUBSUB)
        .append(
            Element::builder("subscription", ns::PUBSUB)
                .at("node", node)
                .at("jid", jid)
                .at("subscription", state)
                .build(),
        )
        .build();
    iq_result(from, to, id, Some(p))
}

/// The subscriptions a user holds on this service.
pub fn pubsub_subscriptions(
    from: &str,
    to: &str,
    id: &str,
    jid: &str,
    nodes: &[String],
) -> Outgoing {
    let mut subs = Element::builder("subscriptions", ns::PUBSUB).build();
    for n in nodes {
        subs.append_child(
            Element::builder("subscription", ns::PUBSUB)
                .at("node", n.as_str())
                .at("jid", jid)
                .at("subscription", "subscribed")
                .build(),
        );
    }
    let p = Element::builder("pubsub", ns::PUBSUB).append(subs).build();
    iq_result(from, to, id, Some(p))
}

/// A notification to a subscriber: items published (or replaced) or retracted.
pub fn pubsub_event(
    from: &str,
    to: &str,
    node: &str,
    published: &[SpaceItem],
    retracted: &[String],
) -> Outgoing {
    let mut items = Element::builder("items", ns::PUBSUB_EVENT)
        .at("node", node)
        .build();
    for i in published {
        items.append_child(item_element(i, ns::PUBSUB_EVENT));
    }
    for id in retracted {
        items.append_child(
            Element::builder("retract", ns::PUBSUB_EVENT)
                .at("id", id.as_str())
                .build(),
        );
    }
    let el = Element::builder("message", ns::STREAM)
        .at("from", from)
        .at("to", to)
        .at("id", format!("space-{:016x}", rand::random::<u64>()))
        .append(
            Element::builder("event", ns::PUBSUB_EVENT)
                .append(items)
                .build(),
        )
        .build();
    Outgoing {
        stanza: el.into(),
        durable: true,
    }
}

/// disco#info of the spaces service, or of one space node (with its meta-data form).
pub fn spaces_info(from: &str, to: &str, id: &str, node: Option<(&str, &str)>) -> Outgoing {
    let ident = |cat: &str, typ: &str, name: &str| {
        Element::builder("identity", ns::DISCO_INFO)
            .at("category", cat)
            .at("type", typ)
            .at("name", name)
            .build()
    };
    let feature = |v: &str| {
        Element::builder("feature", ns::DISCO_INFO)
            .at("var", v)
            .build()
    };
    let mut q = Element::builder("query", ns::DISCO_INFO).build();
    match node {
        None => {
            q.append_child(ident("pubsub", "service", "Spaces"));
            q.append_child(feature(ns::DISCO_INFO));
            q.append_child(feature(ns::DISCO_ITEMS));
            q.append_child(feature(ns::PUBSUB));
            q.append_child(feature(ns::SPACES));
            for f in [
                "subscribe",
                "create-nodes",
                "delete-nodes",
                "config-node",
                "meta-data",
                "delete-items",
                "retract-items",
                "multi-items",
                "item-ids",
                "manage-subscriptions",
                "retrieve-items",
                "retrieve-subscriptions",
            ] {
                q.append_child(feature(&format!("{}#{f}", ns::PUBSUB)));
            }
        }
        Some((node, title)) => {
            set_attr(&mut q, "node", node);
            q.append_child(ident("pubsub", "leaf", title));
            q.append_child(feature(ns::PUBSUB));
            let form = Form {
                result: true,
                form_type: Some(format!("{}#meta-data", ns::PUBSUB)),
                fields: vec![
                    forms::Field::new("pubsub#type", "", forms::FieldKind::TextSingle)
                        .value(ns::SPACES),
                    forms::Field::new("pubsub#title", "", forms::FieldKind::TextSingle)
                        .value(title),
                    forms::Field::new("pubsub#access_model", "", forms::FieldKind::TextSingle)
                        .value("open"),
                    forms::Field::new("pubsub#creator", "", forms::FieldKind::JidSingle)
                        .value(from),
                    forms::Field::new("pubsub#owner", "", forms::FieldKind::JidSingle).value(from),
                ],
                ..Form::default()
            };
            q.append_child(forms::element(&form));
        }
    }
    iq_result(from, to, id, Some(q))
}

/// disco#items of the spaces service: one item per space node.
pub fn spaces_items(from: &str, to: &str, id: &str, spaces: &[(String, String)]) -> Outgoing {
    let mut q = Element::builder("query", ns::DISCO_ITEMS).build();
    for (node, name) in spaces {
        q.append_child(
            Element::builder("item", ns::DISCO_ITEMS)
                .at("jid", from)
                .at("node", node.as_str())
                .at("name", name.as_str())
                .build(),
        );
    }
    iq_result(from, to, id, Some(q))
}

/// A contact for a user's roster: a privileged roster push (XEP-0356, to the user's bare
/// JID) or, without the privilege, a suggestion (XEP-0144 roster item exchange).
pub fn roster_add(
    from: &str,
    user: &str,
    jid: &str,
    name: &str,
    group: &str,
    privileged: bool,
) -> Outgoing {
    let item = |item_ns: &str| {
        let mut i = Element::builder("item", item_ns)
            .at("jid", jid)
            .at("name", name)
            .append(text("group", item_ns, group))
            .build();
        if item_ns == ns::ROSTERX {
            set_attr(&mut i, "action", "add");
        }
        i
    };
    let id = format!("roster-{:016x}", rand::random::<u64>());
    let el = if privileged {
        Element::builder("iq", ns::STREAM)
            .at("from", from)
            .at("to", user)
            .at("type", "set")
            .at("id", id)
            .append(
                Element::builder("query", ns::ROSTER)
                    .append(item(ns::ROSTER))
                    .build(),
            )
            .build()
    } else {
        Element::builder("message", ns::STREAM)
            .at("from", from)
            .at("to", user)
            .at("id", id)
            .append(
                Element::builder("x", ns::ROSTERX)
                    .append(item(ns::ROSTERX))
                    .build(),
            )
            .build()
    };
    Outgoing {
        stanza: el.into(),
        durable: !privileged,
    }
}

/// Requests to a pubsub service of the server that mirrors a space (XEP-0060 as a client):
/// create and configure a space node, publish or retract its items, delete it.
pub enum MirrorOp<'a> {
    Create { title: &'a str },
    Publish(&'a SpaceItem),
    Retract { id: &'a str },
    Delete,
}

pub fn mirror(from: &str, service: &str, node: &str, op: MirrorOp<'_>) -> Outgoing {
    let field = |var: &str, value: &str| {
        forms::Field::new(var, "", forms::FieldKind::TextSingle).value(value)
    };
    let pubsub = match op {
        MirrorOp::Create { title } => {
            let config = Form {
                result: false,
                form_type: Some(format!("{}#node_config", ns::PUBSUB)),
                fields: vec![
                    field("pubsub#type", ns::SPACES),
                    field("pubsub#title", title),
                    field("pubsub#access_model", "open"),
                    field("pubsub#publish_model", "publishers"),
                    field("pubsub#persist_items", "true"),
                    field("pubsub#max_items", "max"),
                    field("pubsub#notify_retract", "true"),
                    field("pubsub#notify_delete", "true"),
                    field("pubsub#notify_config", "true"),
                ],
                ..Form::default()
            };
            let mut x = forms::element(&config);
            set_attr(&mut x, "type", "submit");
            Element::builder("pubsub", ns::PUBSUB)
                .append(
                    Element::builder("create", ns::PUBSUB)
                        .at("node", node)
                        .build(),
                )
                .append(Element::builder("configure", ns::PUBSUB).append(x).build())
                .build()
        }
        MirrorOp::Publish(item) => Element::builder("pubsub", ns::PUBSUB)
            .append(
                Element::builder("publish", ns::PUBSUB)
                    .at("node", node)
                    .append(item_element(item, ns::PUBSUB))
                    .build(),
            )
            .build(),
        MirrorOp::Retract { id } => Element::builder("pubsub", ns::PUBSUB)
            .append(
                Element::builder("retract", ns::PUBSUB)
                    .at("node", node)
                    .at("notify", "true")
                    .append(Element::builder("item", ns::PUBSUB).at("id", id).build())
                    .build(),
            )
            .build(),
        MirrorOp::Delete => Element::builder("pubsub", ns::PUBSUB_OWNER)
            .append(
                Element::builder("delete", ns::PUBSUB_OWNER)
                    .at("node", node)
                    .build(),
            )
            .build(),
    };
    let el = Element::builder("iq", ns::STREAM)
        .at("from", from)
        .at("to", service)
        .at("type", "set")
        .at("id", format!("mirror-{:016x}", rand::random::<u64>()))
        .append(pubsub)
        .build();
    Outgoing {
        stanza: el.into(),
        // kept until the server has it: a mirror that misses a change stays wrong
        durable: true,
    }
}
