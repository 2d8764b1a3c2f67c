//! Element -> what it means: an XmppEvent for the bridge, a service query on the component
//! domain, an error answer, or nothing (errors are never answered with errors).

use super::events::{split_jid, XmppEvent};
use super::ns;
use super::outbound::{error_reply, Condition, ErrorReply, Outgoing};
use tokio_xmpp::minidom::Element;

/// An IQ addressed to the component domain itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceQuery {
    DiscoInfo,
    /// Room listing, RSM-paged.
    DiscoItems {
        max: Option<usize>,
        after: Option<String>,
    },
    Version,
    Ping,
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
        return match (node, resource) {
            (Some(room), Some(_)) | (Some(room), None) => {
                Classified::Event(XmppEvent::OccupantError { room, from })
            }
            _ => Classified::Ignore,
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
        (None, None, ("query", ns::DISCO_INFO, "get")) if payload.attr("node").is_none() => {
            service(ServiceQuery::DiscoInfo)
        }
        (None, None, ("query", ns::DISCO_ITEMS, "get")) if payload.attr("node").is_none() => {
            let set = payload.get_child("set", ns::RSM);
            let max = set
                .and_then(|s| s.get_child("max", ns::RSM))
                .and_then(|m| m.text().trim().parse().ok());
            let after = set
                .and_then(|s| s.get_child("after", ns::RSM))
                .map(|a| a.text());
            service(ServiceQuery::DiscoItems { max, after })
        }
        (None, None, ("query", ns::VERSION, "get")) => service(ServiceQuery::Version),
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
        (Some(_), None, "") => error_for(
            &el,
            Condition::JidMalformed,
            "join a room as room@domain/nick",
        ),
        // Subscriptions and probes to puppets and the gateway are not handled yet: say so.
        (_, _, "subscribe" | "probe") => error_for(&el, Condition::FeatureNotImplemented, ""),
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
                let e = o.element.get_child("error", ns::STREAM)?;
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
            (format!("<presence {u}='lobby@gw.example'/>"), "jid-malformed"),
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
        ];
        for (xml, want) in cases {
            let got = parse(&xml);
            let name = match &got {
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
