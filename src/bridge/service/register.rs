//! XEP-0077 registration with the gateway, driven by the network's login flow; the same
//! steps back the "register" ad-hoc command. A registered user's login gets a live session.

use super::Ask;
use crate::bridge::Bridge;
use crate::xmpp::forms::{Field, FieldKind, Form};
use crate::xmpp::outbound::{iq_result, Condition, Outgoing};
use crate::xmpp::service_xml as sx;
use causeway_api::*;
use std::collections::BTreeMap;

impl Bridge {
    /// The registration form: the network's first login flow.
    pub(super) fn login_form(&self, net: &dyn Network) -> Option<(String, Form)> {
        let flow = net.login_flows().first()?;
        let fields = flow
            .fields
            .iter()
            .map(|f| {
                let kind = if f.secret {
                    FieldKind::TextPrivate
                } else {
                    FieldKind::TextSingle
                };
                Field::new(&f.var, &f.label, kind).required()
            })
            .collect();
        Some((
            flow.id.clone(),
            Form {
                title: format!("Log in to {}", net.capabilities().display_name),
                instructions: flow.name.clone(),
                form_type: Some(crate::xmpp::ns::REGISTER.into()),
                fields,
                ..Form::default()
            },
        ))
    }

    /// Whether a user of this JID's domain may register.
    pub(super) fn may_register(&self, jid: &str) -> bool {
        let domain = crate::xmpp::split_jid(jid).1;
        self.shared
            .config
            .registration_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }

    pub(super) async fn register_form(&self, ask: &Ask<'_>) -> Vec<Outgoing> {
        if !self.may_register(&ask.from) {
            return ask.iq_error(
                Condition::NotAllowed,
                "registration is closed to your server",
            );
        }
        let Some((_, form)) = self.login_form(ask.net.network.as_ref()) else {
            return ask.iq_error(
                Condition::FeatureNotImplemented,
                "this network has no login",
            );
        };
        let registered = matches!(
            self.shared.store.login_of(&ask.net.id, ask.bare()).await,
            Ok(Some(_))
        );
        vec![sx::register_form(
            &ask.to,
            &ask.from,
            &ask.id,
            "Fill in your account of the network.",
            &form,
            registered,
        )]
    }

    /// Validate credentials with the network, keep the login, start its session. Err is a
    /// (condition, text) for the asker.
    pub(super) async fn login_user(
        &self,
        ask: &Ask<'_>,
        fields: BTreeMap<String, String>,
    ) -> Result<LoginRecord, (Condition, String)> {
        if !self.may_register(&ask.from) {
            return Err((
                Condition::NotAllowed,
                "registration is closed to your server".into(),
            ));
        }
        let Some((flow, form)) = self.login_form(ask.net.network.as_ref()) else {
            return Err((
                Condition::FeatureNotImplemented,
                "this network has no login".into(),
            ));
        };
        if let Some(f) = form
            .fields
            .iter()
            .find(|f| fields.get(&f.var).is_none_or(|v| v.trim().is_empty()))
        {
            return Err((Condition::NotAcceptable, format!("{} is required", f.label)));
        }
        if !self
            .shared
            .quotas
            .take(crate::bridge::quota::Per::Registration, ask.bare())
        {
            return Err((
                Condition::ResourceConstraint,
                "too many registrations in the last hour; try again later".into(),
            ));
        }
        let mut login = match ask.net.network.login(&flow, fields).await {
            Ok(l) => l,
            Err(NetworkError::Forbidden(m) | NetworkError::LoggedOut(m)) => {
                return Err((Condition::NotAuthorized, m))
            }
            Err(e) => return Err((Condition::from_network(&e), e.to_string())),
        };
        let bare = ask.bare().to_string();
        login.xmpp_user = Some(bare.clone());
        if let Err(e) = self
            .shared
            .store
            .save_login(&ask.net.id, &bare, &login)
            .await
        {
            tracing::error!(network = %ask.net.id, "login not stored: {e}");
            return Err((
                Condition::InternalServerError,
                "the login could not be kept".into(),
            ));
        }
        self.start_session(ask.net, &login).await;
        tracing::info!(network = %ask.net.id, user = %bare, "user registered");
        Ok(login)
    }

    pub(super) async fn register(
        &self,
        ask: &Ask<'_>,
        fields: BTreeMap<String, String>,
    ) -> Vec<Outgoing> {
        match self.login_user(ask, fields).await {
            Ok(_) => vec![
                iq_result(&ask.to, &ask.from, &ask.id, None),
                // the gateway asks to see the user's presence (XEP-0100 6.1)
                sx::presence(&ask.to, ask.bare(), Some("subscribe")),
            ],
            Err((c, t)) => ask.iq_error(c, &t),
        }
    }

    /// Forget the user's login; true if there was one.
    pub(super) async fn logout_user(&self, ask: &Ask<'_>) -> Result<bool, String> {
        let bare = ask.bare().to_string();
        let old = self
            .shared
            .store
            .remove_login(&ask.net.id, &bare)
            .await
            .map_err(|e| e.to_string())?;
        let session = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(ask.net.id.clone(), bare));
        if let Some(s) = session {
            s.disconnect().await;
        }
        Ok(old.is_some())
    }

    pub(super) async fn unregister(&self, ask: &Ask<'_>) -> Vec<Outgoing> {
        match self.logout_user(ask).await {
            Ok(true) => {
                let (me, to) = (ask.to.as_str(), ask.bare());
                vec![
                    iq_result(me, &ask.from, &ask.id, None),
                    sx::presence(me, to, Some("unsubscribe")),
                    sx::presence(me, to, Some("unsubscribed")),
                    sx::presence(me, to, Some("unavailable")),
                ]
            }
            Ok(false) => ask.iq_error(Condition::ItemNotFound, "you are not registered"),
            Err(e) => {
                tracing::error!(network = %ask.net.id, "login not removed: {e}");
                ask.iq_error(Condition::InternalServerError, "")
            }
        }
    }

    /// Connect a user's own login; its events join the network's event queue.
    pub(super) async fn start_session(&self, net: &crate::bridge::NetCtx, login: &LoginRecord) {
        let Some(user) = login.xmpp_user.clone() else {
            return;
        };
        let sink = EventSink::new(login.login.clone(), net.events.clone());
        match net.network.connect(login, sink).await {
            Ok(session) => {
                let old = self
                    .sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((net.id.clone(), user), session);
                if let Some(old) = old {
                    old.disconnect().await;
                }
            }
            Err(e) => tracing::warn!(network = %net.id, user = %user, "login not connected: {e}"),
        }
    }

    /// At start-up: the sessions of every registered user.
    pub async fn start_user_sessions(&self) {
        for net in self.by_network.values() {
            match self.shared.store.logins(&net.id).await {
                Ok(logins) => {
                    for l in logins {
                        self.start_session(net, &l).await;
                    }
                }
                Err(e) => tracing::error!(network = %net.id, "logins not read: {e}"),
            }
        }
    }

    /// Whether the user has a live session of their own.
    pub(super) fn session_of(&self, net: &NetworkId, bare: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&(net.clone(), bare.to_string()))
    }
}
