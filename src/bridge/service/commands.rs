//! XEP-0050 ad-hoc commands on the gateway: for users (register, unregister, status, join)
//! and for admins (link and unlink spaces, list them, statistics). Each is one form step.

use super::Ask;
use crate::bridge::Bridge;
use crate::xmpp::forms::{Field, FieldKind, Form};
use crate::xmpp::outbound::{Condition, Outgoing};
use crate::xmpp::service_xml::{self as sx, CommandReply};
use std::collections::BTreeMap;

const USER: &[(&str, &str)] = &[
    ("register", "Register (log in to the network)"),
    ("unregister", "Unregister (log out, forget me)"),
    ("status", "Status"),
    ("join", "Find a room or a user by address"),
];
const ADMIN: &[(&str, &str)] = &[
    ("link-space", "Link a space (its rooms become MUCs)"),
    ("unlink-space", "Unlink a space"),
    ("spaces", "List linked spaces"),
    ("stats", "Bridge statistics"),
];

type Submitted = Option<BTreeMap<String, String>>;

impl Bridge {
    pub(super) fn command_list(&self, ask: &Ask<'_>) -> Vec<Outgoing> {
        let mut list: Vec<(&str, &str)> = USER.to_vec();
        if self.is_admin(&ask.from) {
            list.extend_from_slice(ADMIN);
        }
        vec![sx::command_list(&ask.to, &ask.from, &ask.id, &list)]
    }

    pub(super) async fn command(
        &self,
        ask: &Ask<'_>,
        node: &str,
        action: &str,
        sessionid: Option<String>,
        form: Submitted,
    ) -> Vec<Outgoing> {
        let admin_only = ADMIN.iter().any(|(n, _)| *n == node);
        if !admin_only && !USER.iter().any(|(n, _)| *n == node) {
            return ask.iq_error(Condition::ItemNotFound, "no such command");
        }
        if admin_only && !self.is_admin(&ask.from) {
            return ask.iq_error(Condition::Forbidden, "this command is for gateway admins");
        }
        let mut reply = CommandReply {
            node: node.to_string(),
            sessionid: sessionid.unwrap_or_else(|| format!("{:016x}", rand::random::<u64>())),
            ..CommandReply::default()
        };
        if action == "cancel" {
            reply.completed = true;
            reply.note = Some(("info", "Canceled.".into()));
            return vec![sx::command_reply(&ask.to, &ask.from, &ask.id, &reply)];
        }
        let mut extra = Vec::new();
        match node {
            "register" => self.cmd_register(ask, form, &mut reply, &mut extra).await,
            "unregister" => {
                reply.completed = true;
                reply.note = Some(match self.logout_user(ask).await {
                    Ok(true) => (
                        "info",
                        "You are unregistered; your login is forgotten.".into(),
                    ),
                    Ok(false) => ("info", "You were not registered.".into()),
                    Err(e) => {
                        tracing::error!(network = %ask.net.id, "login not removed: {e}");
                        (
                            "error",
                            "Your login could not be removed; try again later.".into(),
                        )
                    }
                });
            }
            "status" => {
                reply.completed = true;
                let text = match self.shared.store.login_of(&ask.net.id, ask.bare()).await {
                    Ok(Some(l)) => format!(
                        "Registered as {} ({}).",
                        l.remote_name,
                        if self.session_of(&ask.net.id, ask.bare()) {
                            "connected"
                        } else {
                            "not connected"
                        }
                    ),
                    Ok(None) => {
                        "Not registered: the gateway's shared login carries your messages.".into()
                    }
                    Err(e) => format!("Unknown: {e}"),
                };
                reply.note = Some(("info", text));
            }
            "join" => match form.as_ref().and_then(|f| f.get("address")) {
                None => {
                    reply.form = Some(Form {
                        title: "Find a room or a user".into(),
                        instructions: "Paste a link, an address or an id.".into(),
                        fields: vec![
                            Field::new("address", "Address", FieldKind::TextSingle).required()
                        ],
                        ..Form::default()
                    });
                }
                Some(address) => {
                    reply.completed = true;
                    match self.resolve_jid(ask.net, address).await {
                        Ok(jid) => {
                            reply.note = Some(("info", format!("{address} is {jid}")));
                            reply.form = Some(Form {
                                result: true,
                                fields: vec![
                                    Field::new("jid", "JID", FieldKind::JidSingle).value(jid)
                                ],
                                ..Form::default()
                            });
                        }
                        Err(e) => reply.note = Some(("error", e.to_string())),
                    }
                }
            },
            "link-space" => self.cmd_link(ask, form, &mut reply).await,
            "unlink-space" => self.cmd_unlink(ask, form, &mut reply).await,
            "spaces" => {
                reply.completed = true;
                let (service, _) = ask.net.spaces_service();
                let text = match self.shared.store.spaces(&ask.net.id).await {
                    Ok(list) if list.is_empty() => "No space is linked.".to_string(),
                    Ok(list) => list
                        .iter()
                        .map(|s| format!("{} — xmpp:{service}?;node={}", s.name, s.id))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    Err(e) => format!("Unknown: {e}"),
                };
                reply.note = Some(("info", text));
            }
            "stats" => {
                reply.completed = true;
                reply.note = Some(("info", self.stats(ask).await));
            }
            _ => return ask.iq_error(Condition::ItemNotFound, "no such command"),
        }
        let mut out = vec![sx::command_reply(&ask.to, &ask.from, &ask.id, &reply)];
        out.extend(extra);
        out
    }

    async fn cmd_register(
        &self,
        ask: &Ask<'_>,
        form: Submitted,
        reply: &mut CommandReply,
        extra: &mut Vec<Outgoing>,
    ) {
        let Some((_, login_form)) = self.login_form(ask.net.network.as_ref()) else {
            reply.completed = true;
            reply.note = Some(("error", "This network has no login.".into()));
            return;
        };
        let Some(fields) = form else {
            reply.form = Some(login_form);
            return;
        };
        match self.login_user(ask, fields).await {
            Ok(login) => {
                reply.completed = true;
                reply.note = Some(("info", format!("Registered as {}.", login.remote_name)));
                extra.push(sx::presence(&ask.to, ask.bare(), Some("subscribe")));
            }
            Err((Condition::NotAllowed, text)) => {
                reply.completed = true;
                reply.note = Some(("error", text));
            }
            Err((_, text)) => {
                // show the form again, with what went wrong
                reply.form = Some(login_form);
                reply.note = Some(("error", text));
            }
        }
    }

    async fn cmd_link(&self, ask: &Ask<'_>, form: Submitted, reply: &mut CommandReply) {
        match form.as_ref().and_then(|f| f.get("space")) {
            None => {
                let linked: Vec<String> = self
                    .shared
                    .store
                    .spaces(&ask.net.id)
                    .await
                    .map(|l| l.into_iter().map(|s| s.id).collect())
                    .unwrap_or_default();
                let options: Vec<(String, String)> = match ask.net.relay.spaces().await {
                    Ok(list) => list
                        .into_iter()
                        .filter(|s| !linked.contains(&s.id.to_string()))
                        .map(|s| (s.id.to_string(), s.name))
                        .collect(),
                    Err(e) => {
                        reply.completed = true;
                        reply.note = Some(("error", e.to_string()));
                        return;
                    }
                };
                if options.is_empty() {
                    reply.completed = true;
                    reply.note = Some(("info", "Every space this gateway sees is linked.".into()));
                    return;
                }
                reply.form = Some(Form {
                    title: "Link a space".into(),
                    instructions:
                        "Its rooms become rooms of this gateway, listed in a XEP-0503 space.".into(),
                    fields: vec![
                        Field::new("space", "Space", FieldKind::ListSingle(options)).required()
                    ],
                    ..Form::default()
                });
            }
            Some(space) => {
                reply.completed = true;
                reply.note = Some(match self.link_space(ask.net, space).await {
                    Ok((name, rooms)) => {
                        let (service, _) = ask.net.spaces_service();
                        (
                            "info",
                            format!(
                                "Linked {name}: {rooms} rooms. Space: xmpp:{service}?;node={space}"
                            ),
                        )
                    }
                    Err(e) => ("error", e),
                });
            }
        }
    }

    async fn cmd_unlink(&self, ask: &Ask<'_>, form: Submitted, reply: &mut CommandReply) {
        match form.as_ref().and_then(|f| f.get("space")) {
            None => {
                let options: Vec<(String, String)> = self
                    .shared
                    .store
                    .spaces(&ask.net.id)
                    .await
                    .map(|l| l.into_iter().map(|s| (s.id, s.name)).collect())
                    .unwrap_or_default();
                if options.is_empty() {
                    reply.completed = true;
                    reply.note = Some(("info", "No space is linked.".into()));
                    return;
                }
                reply.form = Some(Form {
                    title: "Unlink a space".into(),
                    fields: vec![
                        Field::new("space", "Space", FieldKind::ListSingle(options)).required()
                    ],
                    ..Form::default()
                });
            }
            Some(space) => {
                reply.completed = true;
                reply.note = Some(match self.unlink_space(ask.net, space).await {
                    Ok(true) => ("info", format!("Unlinked {space}.")),
                    Ok(false) => ("error", format!("{space} was not linked.")),
                    Err(e) => ("error", e),
                });
            }
        }
    }

    async fn stats(&self, ask: &Ask<'_>) -> String {
        let s = &self.shared.store;
        let n = |r: Result<i64, crate::store::StoreError>| {
            r.map_or_else(|e| format!("? ({e})"), |v| v.to_string())
        };
        format!(
            "Rooms: {}\nPuppets: {}\nMessages stored: {}\nOutbox (awaiting the server): {}\nUser logins: {}",
            n(s.count_portals(&ask.net.id).await),
            n(s.count_puppets().await),
            n(s.count_messages().await),
            n(s.outbox_depth().await),
            s.logins(&ask.net.id).await.map_or(0, |l| l.len()),
        )
    }
}
