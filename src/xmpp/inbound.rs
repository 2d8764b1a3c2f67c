//! Element -> what it means: an XmppEvent for the bridge, a service query on the component
//! domain, an error answer, or nothing (errors are never answered with errors).

use super::events::{split_jid, XmppEvent};
use super::ns;
use super::outbound::{error_reply, Condition, ErrorReply, Outgoing};
use std::collections::BTreeMap;
use tokio_xmpp::minidom::Element;

/// A stanza addressed to a service domain itself (the gateway or its spaces service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceQuery {
    DiscoInfo {
        node: Option<String>,
    },
    /// Room listing (RSM-paged), the command list, or the spaces.
    DiscoItems {
        node: Option<String>,
        max: Option<usize>,
        after: Option<String>,
    },
    Version,
    Ping,
    RegisterGet,
    RegisterSet {
        fields: BTreeMap<String, String>,
        remove: bool,
    },
    GatewayGet,
    GatewaySet {
        prompt: String,
    },
    Command {
        node: String,
        action: String,
        sessionid: Option<String>,
        form: Option<BTreeMap<String, String>>,
    },
    Pubsub(PubsubOp),
    /// Presence to the gateway: subscribe, unsubscribe, probe, "" (available), unavailable.
    Presence {
        typ: String,
    },
    /// XEP-0356: what the server lets the component do (roster: edit users' rosters).
    Privileges {
        roster: bool,
    },
    /// The server's pubsub service refused a space mirror request.
    MirrorRefused {
        condition: String,
    },
    /// The user's server refused a privileged roster push (the contact is then suggested).
    RosterRefused {
        jid: String,
        name: String,
        group: String,
    },
    /// The vCard of a puppet or a room (bare JID on the gateway's domain).
    VCard {
        node: String,
    },
    /// Presence to a puppet's JID: subscribe, unsubscribe or probe.
    PuppetPresence {
        puppet: String,
        typ: String,
        /// `<show/>` and `<status/>` of an available presence.
        show: Option<String>,
        status: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PubsubOp {
    Items {
        node: String,
    },
    Subscribe {
        node: String,
        jid: String,
    },
    Unsubscribe {
        node: String,
        jid: String,
    },
    Subscriptions,
    /// Anything that changes the service (publish, retract, create, delete, configure).
    Write {
        what: String,
    },
}

#[derive(Debug)]
pub enum Classified {
    Event(XmppEvent),
    Service {
        query: ServiceQuery,
        from: String,
        to: String,
        id: String,
    },
    Reply(Outgoing),
    /// The answer to a request Causeway sent (a vCard read).
    Answer {
        id: String,
        from: String,
        answer: super::vcard::VcardAnswer,
    },
    Ignore,
}

pub fn error_for(el: &Element, condition: Condition, text: &str) -> Classified {
    if el.attr("type") == Some("error") {
        return Classified::Ignore;
    }
    let kind = match el.name() {
        "iq" => "iq",
        "presence" => "presence",
        _ => "message",
    };
    Classified::Reply(error_reply(&ErrorReply {
        kind,
        from: el.attr("to").unwrap_or_default().to_string(),
        to: el.attr("from").unwrap_or_default().to_string(),
        id: el.attr("id").map(String::from),
        condition,
        text: (!text.is_empty()).then(|| text.to_string()),
    }))
}

pub fn classify(domain: &str, el: Element, max_body: usize) -> Classified {
    let (Some(from), Some(to)) = (el.attr("from"), el.attr("to")) else {
        return Classified::Ignore; // the server always stamps both on component streams
    };
    let (from, to) = (from.to_string(), to.to_string());
    let (node, to_domain, resource) = split_jid(&to);
    if !to_domain.eq_ignore_ascii_case(domain) {
        return error_for(&el, Condition::ItemNotFound, "not a JID of this gateway");
    }
    let node = node.map(str::to_lowercase);
    let typ = el.attr("type").unwrap_or("");
    if typ == "error" {
        // a request to the server's pubsub service (space mirror) failed
        if el.attr("id").is_some_and(|i| i.starts_with("mirror-")) {
            let condition = el
                .get_child("error", ns::STREAM)
                .and_then(|e| e.children().find(|c| c.ns() == ns::STANZAS))
                .map(|c| c.name().to_string())
                .unwrap_or_default();
            return Classified::Service {
                query: ServiceQuery::MirrorRefused { condition },
                from,
                to,
                id: String::new(),
            };
        }
        // a privileged roster push the user's server could not carry out
        let roster_item = el
            .get_child("query", ns::ROSTER)
            .and_then(|q| q.get_child("item", ns::ROSTER));
        if let (None, Some(item)) = (&node, roster_item) {
            let group = item.get_child("group", ns::ROSTER).map(|g| g.text());
            return Classified::Service {
                query: ServiceQuery::RosterRefused {
                    jid: item.attr("jid").unwrap_or_default().to_string(),
                    name: item.attr("name").unwrap_or_default().to_string(),
                    group: group.unwrap_or_default(),
                },
                from,
                to,
                id: String::new(),
            };
        }
        return match (node, resource) {
            (Some(room), Some(_)) | (Some(room), None) => {
                Classified::Event(XmppEvent::OccupantError { room, from })
            }
            _ => Classified::Ignore,
        };
    }
    // XEP-0356: the server tells the component what it may do for its users
    let privilege = el
        .get_child("privilege", ns::PRIVILEGE)
        .or_else(|| el.get_child("privilege", ns::PRIVILEGE_V1));
    if let (None, "message", Some(p)) = (&node, el.name(), privilege) {
        let roster = p.children().any(|perm| {
            perm.attr("access") == Some("roster")
                && matches!(perm.attr("type"), Some("set" | "both"))
        });
        return Classified::Service {
            query: ServiceQuery::Privileges { roster },
            from,
            to,
            id: String::new(),
        };
    }
    match el.name() {
        "iq" => iq(el, &from, &to, node, resource.map(String::from)),
        "presence" => presence(el, from, node, resource.map(String::from)),
        "message" => message(el, from, node, resource, max_body),
        _ => Classified::Ignore,
    }
}

fn iq(
    el: Element,
    from: &str,
    to: &str,
    node: Option<String>,
    resource: Option<String>,
) -> Classified {
    let typ = el.attr("type").unwrap_or("");
    if let Some(id) = super::vcard::answer_id(&el) {
        return Classified::Answer {
            id: id.to_string(),
            from: el.attr("from").unwrap_or_default().to_string(),
            answer: super::vcard::read_answer(&el),
        };
    }
    if typ == "result" {
        return Classified::Ignore;
    }
    let id = el.attr("id").unwrap_or_default().to_string();
    let payloads: Vec<&Element> = el.children().collect();
    let [payload] = payloads.as_slice() else {
        return error_for(
            &el,
            Condition::BadRequest,
            "an iq get or set needs exactly one child",
        );
    };
    let payload_ns = payload.ns();
    let q = (payload.name(), payload_ns.as_str(), typ);
    let service = |query| Classified::Service {
        query,
        from: from.to_string(),
        to: to.to_string(),
        id: id.clone(),
    };
    match (node, resource, q) {
        (None, None, ("query", ns::DISCO_INFO, "get")) => service(ServiceQuery::DiscoInfo {
            node: payload.attr("node").map(String::from),
        }),
        (None, None, ("query", ns::DISCO_ITEMS, "get")) => {
            let set = payload.get_child("set", ns::RSM);
            let max = set
                .and_then(|s| s.get_child("max", ns::RSM))
                .and_then(|m| m.text().trim().parse().ok());
            let after = set
                .and_then(|s| s.get_child("after", ns::RSM))
                .map(|a| a.text());
            service(ServiceQuery::DiscoItems {
                node: payload.attr("node").map(String::from),
                max,
                after,
            })
        }
        (None, None, ("query", ns::REGISTER, "get")) => service(ServiceQuery::RegisterGet),
        (None, None, ("query", ns::REGISTER, "set")) => {
            let mut fields: BTreeMap<String, String> = payload
                .children()
                .filter(|c| c.ns() == ns::REGISTER && !c.children().any(|_| true))
                .map(|c| (c.name().to_string(), c.text()))
                .collect();
            let remove = fields.remove("remove").is_some();
            if let Some(form) = payload
                .get_child("x", ns::DATA)
                .and_then(super::forms::submitted)
            {
                fields.extend(form);
            }
            service(ServiceQuery::RegisterSet { fields, remove })
        }
        (None, None, ("query", ns::GATEWAY, "get")) => service(ServiceQuery::GatewayGet),
        (None, None, ("query", ns::GATEWAY, "set")) => {
            match payload.get_child("prompt", ns::GATEWAY).map(|p| p.text()) {
                Some(prompt) if !prompt.trim().is_empty() => {
                    service(ServiceQuery::GatewaySet { prompt })
                }
                _ => error_for(&el, Condition::BadRequest, "a prompt is required"),
            }
        }
        (None, None, ("command", ns::COMMANDS, "set")) => match payload.attr("node") {
            Some(node) => service(ServiceQuery::Command {
                node: node.to_string(),
                action: payload.attr("action").unwrap_or("execute").to_string(),
                sessionid: payload.attr("sessionid").map(String::from),
                form: payload
                    .get_child("x", ns::DATA)
                    .and_then(super::forms::submitted),
            }),
            None => error_for(&el, Condition::BadRequest, "a command needs a node"),
        },
        (None, None, ("pubsub", ns::PUBSUB | ns::PUBSUB_OWNER, _)) => {
            match pubsub_op(payload, typ) {
                Some(op) => service(ServiceQuery::Pubsub(op)),
                None => error_for(&el, Condition::BadRequest, "an unknown pubsub request"),
            }
        }
        (None, None, ("query", ns::VERSION, "get")) => service(ServiceQuery::Version),
        (Some(room), Some(nick), ("vCard", ns::VCARD, "get")) => {
            Classified::Event(XmppEvent::OccupantVCard {
                room,
                nick,
                from: from.to_string(),
                id,
            })
        }
        (Some(node), None, ("vCard", ns::VCARD, "get")) => service(ServiceQuery::VCard { node }),
        (_, _, ("ping", ns::PING, "get")) => match (to_node(to), to_resource(to)) {
            (Some(room), Some(nick)) => Classified::Event(XmppEvent::SelfPing {
                room,
                nick,
                from: from.to_string(),
                id,
            }),
            _ => service(ServiceQuery::Ping),
        },
        (Some(room), None, ("query", ns::DISCO_INFO, "get")) => {
            Classified::Event(XmppEvent::RoomInfo {
                room,
                from: from.to_string(),
                id,
            })
        }
        (Some(room), None, ("query", ns::MAM, "set")) => match super::mam::parse_query(payload) {
            Ok(query) => Classified::Event(XmppEvent::Archive {
                room,
                from: from.to_string(),
                id,
                query,
            }),
            Err(e) => error_for(&el, Condition::BadRequest, &e),
        },
        (Some(_), None, ("query", ns::MAM, "get")) => Classified::Reply(
            super::outbound::iq_result(to, from, &id, Some(super::mam::form())),
        ),
        (Some(room), None, ("moderate", ns::MODERATE, "set")) => {
            match (
                payload.attr("id"),
                payload.get_child("retract", ns::RETRACT),
            ) {
                (Some(target), Some(_)) => Classified::Event(XmppEvent::Moderate {
                    room,
                    from: from.to_string(),
                    id,
                    target: target.to_string(),
                    reason: payload
                        .get_child("reason", ns::MODERATE)
                        .map(|r| r.text())
                        .filter(|r| !r.trim().is_empty()),
                }),
                _ => error_for(
                    &el,
                    Condition::BadRequest,
                    "moderate needs the id of a message and a retract element",
                ),
            }
        }
        (Some(_), None, ("query", ns::DISCO_ITEMS, "get")) => {
            Classified::Reply(super::outbound::iq_result(
                to,
                from,
                &id,
                Some(Element::builder("query", ns::DISCO_ITEMS).build()),
            ))
        }
        _ => error_for(&el, Condition::FeatureNotImplemented, ""),
    }
}

fn pubsub_op(p: &Element, typ: &str) -> Option<PubsubOp> {
    if p.ns() == ns::PUBSUB_OWNER {
        let what = p.children().next().map(|c| c.name().to_string())?;
        return Some(PubsubOp::Write { what });
    }
    let first = p.children().next()?;
    let node = || first.attr("node").map(String::from);
    Some(match (first.name(), typ) {
        ("items", "get") => PubsubOp::Items { node: node()? },
        ("subscribe", "set") => PubsubOp::Subscribe {
            node: node()?,
            jid: first.attr("jid")?.to_string(),
        },
        ("unsubscribe", "set") => PubsubOp::Unsubscribe {
            node: node()?,
            jid: first.attr("jid")?.to_string(),
        },
        ("subscriptions", "get") => PubsubOp::Subscriptions,
        (other, "set") => PubsubOp::Write {
            what: other.to_string(),
        },
        _ => return None,
    })
}

fn to_node(jid: &str) -> Option<String> {
    split_jid(jid).0.map(str::to_lowercase)
}
fn to_resource(jid: &str) -> Option<String> {
    split_jid(jid).2.map(String::from)
}

fn presence(
    el: Element,
    from: String,
    node: Option<String>,
    resource: Option<String>,
) -> Classified {
    let typ = el.attr("type").unwrap_or("");
    let id = el.attr("id").map(String::from);
    match (node, resource, typ) {
        (Some(room), Some(nick), "") => {
            let nick = nick.trim().to_string();
            if nick.is_empty() {
                return error_for(&el, Condition::JidMalformed, "a nickname is required");
            }
            let history = el
                .get_child("x", ns::MUC)
                .and_then(|x| x.get_child("history", ns::MUC))
                .and_then(|h| {
                    h.attr("maxstanzas")
                        .or_else(|| h.attr("maxchars").filter(|c| *c == "0"))
                })
                .and_then(|n| n.parse().ok());
            Classified::Event(XmppEvent::Join {
                room,
                from,
                nick,
                id,
                history,
            })
        }
        (Some(room), Some(_), "unavailable") => {
            Classified::Event(XmppEvent::Leave { room, from, id })
        }

        // Presence to the gateway itself: subscriptions, probes, availability.
        (None, None, t) => Classified::Service {
            query: ServiceQuery::Presence { typ: t.to_string() },
            to: el.attr("to").unwrap_or_default().to_string(),
            from,
            id: el.attr("id").unwrap_or_default().to_string(),
        },
        // Presence to a bare JID: a puppet's subscriptions and probes, or the user's
        // availability sent to a contact (a bare room JID gets an error from the service).
        (Some(puppet), None, t @ ("subscribe" | "probe" | "unsubscribe" | "" | "unavailable")) => {
            Classified::Service {
                query: ServiceQuery::PuppetPresence {
                    puppet,
                    typ: t.to_string(),
                    show: el.get_child("show", ns::STREAM).map(|s| s.text()),
                    status: el.get_child("status", ns::STREAM).map(|s| s.text()),
                },
                to: el.attr("to").unwrap_or_default().to_string(),
                from,
                id: el.attr("id").unwrap_or_default().to_string(),
            }
        }
        _ => Classified::Ignore,
    }
}

fn message(
    el: Element,
    from: String,
    node: Option<String>,
    resource: Option<&str>,
    max_body: usize,
) -> Classified {
    let typ = el.attr("type").unwrap_or("normal");
    let id = el.attr("id").map(String::from);
    let payload = match super::payload::parse(&el, max_body) {
        Ok(p) if p.is_empty() => return Classified::Ignore,
        Ok(p) => p,
        Err(why) => return error_for(&el, Condition::NotAcceptable, &why),
    };
    match (node, resource, typ) {
        (Some(room), None, "groupchat") => {
            let origin_id = el
                .get_child("origin-id", ns::SID)
                .and_then(|o| o.attr("id"))
                .map(String::from);
            Classified::Event(XmppEvent::Groupchat {
                room,
                from,
                id,
                origin_id,
                payload,
            })
        }
        // Chat states and markers to an occupant are noise, not private messages.
        (Some(_), Some(_), _) if payload.body.is_none() => Classified::Ignore,
        (Some(_), Some(_), _) => error_for(
            &el,
            Condition::NotAcceptable,
            "private messages are disabled in this room",
        ),
        (Some(user), None, "chat" | "normal") => Classified::Event(XmppEvent::Direct {
            user,
            from,
            id,
            payload,
        }),
        (None, _, _) if payload.body.is_none() => Classified::Ignore,
        (None, _, _) => error_for(
            &el,
            Condition::ServiceUnavailable,
            "the gateway itself does not take messages",
        ),
        _ => error_for(&el, Condition::BadRequest, "unexpected message type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Classified {
        let el: Element = xml
            .replace("<iq ", "<iq xmlns='jabber:component:accept' ")
            .replace("<message ", "<message xmlns='jabber:component:accept' ")
            .replace("<presence ", "<presence xmlns='jabber:component:accept' ")
            .parse()
            .expect("test xml");
        classify("gw.example", el, 100)
    }

    fn error_condition(c: &Classified) -> Option<String> {
        match c {
            Classified::Reply(o) => {
                let el = o.to_element()?;
                let e = el.get_child("error", ns::STREAM)?;
                e.children().next().map(|c| c.name().to_string())
            }
            _ => None,
        }
    }

    #[test]
    fn stanzas_are_classified() {
        let u = "from='u@example.org/r' to";
        let cases: Vec<(String, &str)> = vec![
            (format!("<iq type='get' id='1' {u}='gw.example'><query xmlns='{}'/></iq>", ns::DISCO_INFO), "service"),
            (format!("<iq type='get' id='1' {u}='gw.example'/>"), "bad-request"),
            (format!("<iq type='get' id='1' {u}='gw.example'><foo xmlns='urn:x'/></iq>"), "feature-not-implemented"),
            (format!("<iq type='set' id='1' {u}='lobby@gw.example'><foo xmlns='urn:x'/></iq>"), "feature-not-implemented"),
            (format!("<iq type='result' id='1' {u}='gw.example'/>"), "ignore"),
            (format!("<iq type='get' id='1' {u}='lobby@gw.example/me'><ping xmlns='{}'/></iq>", ns::PING), "selfping"),
            (format!("<presence {u}='Lobby@gw.example/me'><x xmlns='{}'><history maxstanzas='0'/></x></presence>", ns::MUC), "join:0"),
            // a bare JID: a contact's availability, or a join without a nick (the service
            // knows which, and answers jid-malformed to the latter)
            (format!("<presence {u}='lobby@gw.example'/>"), "service"),
            (format!("<presence type='unavailable' {u}='lobby@gw.example/me'/>"), "leave"),
            (format!("<message type='groupchat' id='m' {u}='lobby@gw.example'><body>hi</body></message>"), "groupchat"),
            (format!("<message type='groupchat' {u}='lobby@gw.example'><body>{}</body></message>", "x".repeat(101)), "not-acceptable"),
            (format!("<message type='chat' {u}='lobby@gw.example/bob'><body>pm</body></message>"), "not-acceptable"),
            (format!("<message type='chat' {u}='alice@gw.example'><body>dm</body></message>"), "direct"),
            (format!("<message type='chat' {u}='gw.example'><body>hey</body></message>"), "service-unavailable"),
            (format!("<message type='error' {u}='lobby@gw.example/x'/>"), "occupant-error"),
            (format!("<message type='chat' {u}='alice@other.example'><body>x</body></message>"), "item-not-found"),
            (format!("<message type='groupchat' {u}='lobby@gw.example'><active xmlns='{}'/></message>", ns::CHATSTATES), "groupchat"),
            (format!("<message type='groupchat' {u}='lobby@gw.example'><markable xmlns='{}'/></message>", ns::MARKERS), "ignore"),
            (format!("<iq type='set' id='1' {u}='lobby@gw.example'><query xmlns='{}'/></iq>", ns::MAM), "archive"),
            (format!("<iq type='set' id='1' {u}='lobby@gw.example'><query xmlns='{}'><set xmlns='{}'><max>x</max></set></query></iq>", ns::MAM, ns::RSM), "bad-request"),
            (format!("<iq type='set' id='1' {u}='lobby@gw.example'><moderate id='s1' xmlns='{}'><retract xmlns='{}'/></moderate></iq>", ns::MODERATE, ns::RETRACT), "moderate"),
            (format!("<iq type='set' id='1' {u}='lobby@gw.example'><moderate xmlns='{}'/></iq>", ns::MODERATE), "bad-request"),
            (format!("<message type='groupchat' {u}='lobby@gw.example'><reactions xmlns='{}'/></message>", ns::REACTIONS), "not-acceptable"),
            (format!("<message from='example.org' to='gw.example'><privilege xmlns='{}'><perm type='both' access='roster'/></privilege></message>", ns::PRIVILEGE_V1), "privileges:true"),
            (format!("<message from='example.org' to='gw.example'><privilege xmlns='{}'><perm type='get' access='roster'/></privilege></message>", ns::PRIVILEGE), "privileges:false"),
            (format!("<iq type='error' id='roster-1' from='u@example.org' to='gw.example'><query xmlns='{}'><item jid='a@gw.example' name='A'/></query></iq>", ns::ROSTER), "roster-refused"),
        ];
        for (xml, want) in cases {
            let got = parse(&xml);
            let name = match &got {
                Classified::Service {
                    query: ServiceQuery::Privileges { roster },
                    ..
                } => format!("privileges:{roster}"),
                Classified::Service {
                    query: ServiceQuery::RosterRefused { .. },
                    ..
                } => "roster-refused".to_string(),
                Classified::Service { .. } => "service".to_string(),
                Classified::Ignore => "ignore".to_string(),
                Classified::Event(XmppEvent::SelfPing { .. }) => "selfping".to_string(),
                Classified::Event(XmppEvent::Join { room, history, .. }) => {
                    assert_eq!(room, "lobby");
                    format!(
                        "join:{}",
                        history.map(|h| h.to_string()).unwrap_or_default()
                    )
                }
                Classified::Event(XmppEvent::Leave { .. }) => "leave".to_string(),
                Classified::Event(XmppEvent::Groupchat { .. }) => "groupchat".to_string(),
                Classified::Event(XmppEvent::Direct { .. }) => "direct".to_string(),
                Classified::Event(XmppEvent::OccupantError { .. }) => "occupant-error".to_string(),
                Classified::Event(XmppEvent::Archive { .. }) => "archive".to_string(),
                Classified::Event(XmppEvent::Moderate { .. }) => "moderate".to_string(),
                other => error_condition(other).unwrap_or_else(|| format!("{other:?}")),
            };
            assert_eq!(name, want, "{xml}");
        }
    }
}
