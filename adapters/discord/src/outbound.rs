//! Core -> Discord: XMPP users' messages through the channel's webhook (their nick and
//! avatar), long texts split into parts, replies as a quote line with a jump link, files
//! uploaded within the size limit; edits and deletions through the same webhook; reactions
//! and typing through the bot.

use crate::cache::{Cache, Hook};
use crate::markdown::{self, Mentionable};
use crate::rest::{emoji_path, Body, Upload};
use crate::session::Inner;
use causeway_api::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Discord's limit on a message's content.
pub const MAX_CHARS: usize = 2000;

/// Record a webhook from Discord's answer if it is one of ours (made by the bot, our name).
pub fn remember_hook(c: &mut Cache, name: &str, w: &Value) -> Option<Hook> {
    let by_bot = w["user"]["id"].as_str() == Some(c.bot.to_string().as_str());
    let id: u64 = w["id"].as_str()?.parse().ok()?;
    let channel: u64 = w["channel_id"].as_str()?.parse().ok()?;
    let token = w["token"].as_str()?;
    if !by_bot || w["name"].as_str() != Some(name) {
        return None;
    }
    let hook = Hook {
        id,
        token: token.to_string(),
    };
    c.ours.insert(id);
    c.hooks.insert(channel, hook.clone());
    Some(hook)
}

/// The webhook of a channel: known, found among the channel's webhooks, or created.
async fn hook(inner: &Inner, channel: u64) -> Result<Hook, NetworkError> {
    if let Some(h) = inner.read().hooks.get(&channel) {
        return Ok(h.clone());
    }
    let _one = inner.hook_lock.lock().await;
    if let Some(h) = inner.read().hooks.get(&channel) {
        return Ok(h.clone());
    }
    let name = &inner.cfg.webhook_name;
    let path = format!("/channels/{channel}/webhooks");
    let list = inner
        .rest
        .bot(Method::GET, &path, Body::None, "the channel's webhooks")
        .await?;
    for w in list.as_array().into_iter().flatten() {
        if let Some(h) = remember_hook(&mut inner.write(), name, w) {
            return Ok(h);
        }
    }
    let w = inner
        .rest
        .bot(
            Method::POST,
            &path,
            Body::Json(json!({"name": name})),
            "creating the channel's webhook",
        )
        .await?;
    tracing::info!(channel, "webhook created");
    remember_hook(&mut inner.write(), name, &w).ok_or_else(|| {
        NetworkError::Other("creating the channel's webhook: unexpected answer".into())
    })
}

fn forget_hook(inner: &Inner, channel: u64) {
    inner.write().hooks.remove(&channel);
}

/// A nick Discord takes as a webhook username (1-80 characters, no "clyde"/"discord").
fn username(nick: &str) -> String {
    let mut n: String = nick.chars().filter(|c| !c.is_control()).take(80).collect();
    for word in ["discord", "clyde"] {
        while let Some(i) = n.to_ascii_lowercase().find(word) {
            // Same look, not the forbidden word: a zero-width joiner after the first letter.
            let first = n[i..].chars().next().map_or(1, char::len_utf8);
            n.insert(i + first, '\u{200d}');
        }
    }
    if n.trim().is_empty() {
        "XMPP user".into()
    } else {
        n
    }
}

struct Target {
    channel: u64,
    guild: u64,
    hook_channel: u64,
    thread: Option<u64>,
}

fn target(inner: &Inner, room: &RoomKey) -> Result<Target, NetworkError> {
    let channel = inner.channel(room)?;
    let c = inner.read();
    let (hook_channel, thread) = c.hook_target(channel).ok_or_else(|| {
        NetworkError::Unsupported("messages cannot be posted in this channel".into())
    })?;
    let guild = c.channels.get(&channel).map_or(0, |ch| ch.guild);
    Ok(Target {
        channel,
        guild,
        hook_channel,
        thread,
    })
}

fn thread_query(t: &Target, first: bool) -> String {
    match t.thread {
        Some(id) => format!("{}thread_id={id}", if first { "?" } else { "&" }),
        None => String::new(),
    }
}

pub async fn send(inner: &Inner, msg: OutgoingMessage) -> Result<Sent, NetworkError> {
    let t = target(inner, &msg.room)?;
    let names = inner.write().mentionable(t.guild);
    let (mut md, mentioned) = markdown::render(&msg.content, &Mentionable { names: &names });
    let mut uploads = Vec::new();
    let mut warnings = Vec::new();
    for a in &msg.content.attachments {
        match fetch(inner, a).await {
            Ok(u) => {
                if md.trim() == a.url {
                    md.clear(); // the body was only the file's URL (XEP-0066)
                }
                uploads.push(u);
            }
            Err(why) => {
                tracing::info!("file linked instead of uploaded: {why}");
                warnings.push(format!("linked, not uploaded: {why}"));
                if !md.contains(&a.url) {
                    md = if md.is_empty() {
                        a.url.clone()
                    } else {
                        format!("{md}\n{}", a.url)
                    };
                }
            }
        }
    }
    if let Some(reply) = &msg.reply_to {
        if let Some(quote) = reply_quote(inner, &t, reply).await {
            md = format!("{quote}\n{md}");
        }
    }
    let mut parts = markdown::split(&md, MAX_CHARS);
    if parts.is_empty() {
        if uploads.is_empty() {
            return Err(NetworkError::BadRequest("an empty message".into()));
        }
        parts.push(String::new());
    }
    if msg.maybe_sent && parts.iter().all(|p| !p.trim().is_empty()) {
        // Sent before Causeway stopped, perhaps: webhooks take no idempotency key, so the
        // channel's latest messages are searched for our webhook's post of these parts.
        let name = msg.persona.as_ref().map(|p| username(&p.nick));
        if let Some(ids) = posted_before(inner, &t, &parts, name.as_deref()).await {
            tracing::info!(
                channel = t.channel,
                "a message sent as Causeway stopped was on Discord already; not posted again"
            );
            return Ok(Sent {
                ids,
                at: crate::inbound::now_ms(),
                warnings,
            });
        }
    }
    let persona = msg.persona.as_ref();
    let mut ids = Vec::new();
    let last = parts.len() - 1;
    for (i, part) in parts.into_iter().enumerate() {
        let mut body = json!({
            "content": part,
            "allowed_mentions": {"parse": [], "users": mentioned.iter().take(100).collect::<Vec<_>>()},
        });
        if let Some(p) = persona {
            body["username"] = json!(username(&p.nick));
            if let Some(url) = &p.avatar_url {
                body["avatar_url"] = json!(url);
            }
        }
        let files = if i == last {
            std::mem::take(&mut uploads)
        } else {
            Vec::new()
        };
        let sent = execute(inner, &t, body, files).await?;
        ids.push(RemoteMessageId::new(sent));
    }
    Ok(Sent {
        ids,
        at: crate::inbound::now_ms(),
        warnings,
    })
}

/// Our webhook's posts of these parts under this name, in order, among the channel's
/// latest messages.
async fn posted_before(
    inner: &Inner,
    t: &Target,
    parts: &[String],
    name: Option<&str>,
) -> Option<Vec<RemoteMessageId>> {
    let path = format!("/channels/{}/messages?limit=50", t.channel);
    let latest = inner
        .rest
        .bot(
            Method::GET,
            &path,
            Body::None,
            "the channel's latest messages",
        )
        .await
        .ok()?;
    let ours = inner.read().ours.clone();
    // (Discord lists the newest first)
    let mine: Vec<&Value> = latest
        .as_array()?
        .iter()
        .rev()
        .filter(|m| {
            m["webhook_id"]
                .as_str()
                .and_then(|w| w.parse::<u64>().ok())
                .is_some_and(|w| ours.contains(&w))
                && name.is_none_or(|n| m["author"]["username"].as_str() == Some(n))
        })
        .collect();
    let start = mine.windows(parts.len()).rposition(|w| {
        w.iter()
            .zip(parts)
            .all(|(m, p)| m["content"].as_str() == Some(p))
    })?;
    Some(
        mine[start..start + parts.len()]
            .iter()
            .filter_map(|m| m["id"].as_str().map(RemoteMessageId::new))
            .collect(),
    )
}

/// Post one part through the channel's webhook; a webhook deleted on Discord is made again.
async fn execute(
    inner: &Inner,
    t: &Target,
    body: Value,
    files: Vec<Upload>,
) -> Result<String, NetworkError> {
    for attempt in 0..2 {
        let h = hook(inner, t.hook_channel).await?;
        let path = format!(
            "/webhooks/{}/{}?wait=true{}",
            h.id,
            h.token,
            thread_query(t, false)
        );
        let req = if files.is_empty() {
            Body::Json(body.clone())
        } else {
            Body::Multipart(body.clone(), files.clone())
        };
        match inner
            .rest
            .hook(Method::POST, &path, req, "posting to the channel")
            .await
        {
            Ok(v) => {
                return v["id"].as_str().map(str::to_string).ok_or_else(|| {
                    NetworkError::Other("posting to the channel: no message id".into())
                })
            }
            Err(NetworkError::NotFound(why)) if attempt == 0 && why.contains("Webhook") => {
                tracing::warn!(
                    channel = t.hook_channel,
                    "our webhook is gone; making a new one"
                );
                forget_hook(inner, t.hook_channel);
            }
            Err(e) => return Err(e),
        }
    }
    Err(NetworkError::Other(
        "posting to the channel: the webhook keeps disappearing".into(),
    ))
}

/// "> **Author**: first line… ([jump](link))": webhooks cannot reply.
async fn reply_quote(inner: &Inner, t: &Target, reply: &RemoteMessageId) -> Option<String> {
    let path = format!("/channels/{}/messages/{}", t.channel, reply.as_str());
    let v = inner
        .rest
        .bot(Method::GET, &path, Body::None, "the message replied to")
        .await
        .ok()?;
    let author_id: u64 = v["author"]["id"].as_str()?.parse().ok()?;
    let author = {
        let c = inner.read();
        c.person(Some(t.guild), author_id)
            .map(|p| p.name.clone())
            .or_else(|| v["author"]["global_name"].as_str().map(str::to_string))
            .or_else(|| v["author"]["username"].as_str().map(str::to_string))
            .unwrap_or_else(|| "someone".into())
    };
    let text = v["content"].as_str().unwrap_or("");
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("> "))
        .unwrap_or("");
    let mut snippet: String = first.chars().take(100).collect();
    if snippet.len() < first.len() {
        snippet.push('…');
    }
    let link = format!(
        "https://discord.com/channels/{}/{}/{}",
        t.guild,
        t.channel,
        reply.as_str()
    );
    let who = markdown::render(&Content::text(author), &Mentionable { names: &[] }).0;
    Some(format!("> **{who}**: {snippet} ([jump]({link}))"))
}

/// Download a file to upload it, within the upload limit.
async fn fetch(inner: &Inner, a: &Attachment) -> Result<Upload, String> {
    let limit = inner.cfg.upload_limit_bytes;
    if a.size.is_some_and(|s| s > limit) {
        return Err(format!("{} is larger than the upload limit", a.name));
    }
    let got = inner
        .fetch
        .fetch(&a.url, limit)
        .await
        .map_err(|e| format!("{}: {e}", a.name))?;
    Ok(Upload {
        name: a.name.clone(),
        content_type: a
            .content_type
            .clone()
            .or(got.content_type)
            .unwrap_or_else(|| "application/octet-stream".into()),
        bytes: got.bytes,
    })
}

/// The path of one of our webhook's messages.
async fn hook_message(
    inner: &Inner,
    t: &Target,
    msg: &RemoteMessageId,
) -> Result<String, NetworkError> {
    let h = hook(inner, t.hook_channel).await?;
    Ok(format!(
        "/webhooks/{}/{}/messages/{}{}",
        h.id,
        h.token,
        msg.as_str(),
        thread_query(t, true)
    ))
}

pub async fn apply(inner: &Inner, action: Action) -> Result<(), NetworkError> {
    let t = target(inner, &action.room)?;
    match action.kind {
        ActionKind::Edit {
            target: msg,
            content,
            ..
        } => {
            let names = inner.write().mentionable(t.guild);
            let (md, mentioned) = markdown::render(&content, &Mentionable { names: &names });
            // An edit replaces one Discord message: a longer text is cut to fit.
            let md: String = if md.chars().count() > MAX_CHARS {
                md.chars()
                    .take(MAX_CHARS - 1)
                    .chain(std::iter::once('…'))
                    .collect()
            } else {
                md
            };
            let body =
                json!({"content": md, "allowed_mentions": {"parse": [], "users": mentioned}});
            let path = hook_message(inner, &t, &msg).await?;
            inner
                .rest
                .hook(Method::PATCH, &path, Body::Json(body), "editing a message")
                .await?;
            Ok(())
        }
        ActionKind::Retract { target: msg } => {
            let path = hook_message(inner, &t, &msg).await?;
            match inner
                .rest
                .hook(Method::DELETE, &path, Body::None, "deleting a message")
                .await
            {
                Ok(_) => Ok(()),
                // Not one of ours: a moderator's deletion, done by the bot.
                Err(NetworkError::NotFound(_)) => {
                    let path = format!("/channels/{}/messages/{}", t.channel, msg.as_str());
                    inner
                        .rest
                        .bot(Method::DELETE, &path, Body::None, "deleting a message")
                        .await?;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        ActionKind::ReactionAdd { target: msg, emoji } => {
            react(inner, &t, &msg, &emoji, true).await
        }
        ActionKind::ReactionRemove { target: msg, emoji } => {
            react(inner, &t, &msg, &emoji, false).await
        }
        ActionKind::Typing { active } => {
            if active {
                let path = format!("/channels/{}/typing", t.channel);
                inner
                    .rest
                    .bot(Method::POST, &path, Body::None, "typing")
                    .await?;
            }
            Ok(())
        }
        // Webhook posts need no membership: the persona is a name and a picture per post.
        ActionKind::Membership { .. } => Ok(()),
        ActionKind::Presence { .. } => Err(NetworkError::Unsupported(
            "no direct messages in community mode".into(),
        )),
        ActionKind::ReadMarker { .. } => Err(NetworkError::Unsupported(
            "Discord bots have no read markers".into(),
        )),
    }
}

/// Reactions of XMPP users are the bot's: it adds an emoji for the first of them and takes it
/// back when the last one does.
async fn react(
    inner: &Inner,
    t: &Target,
    msg: &RemoteMessageId,
    emoji: &str,
    add: bool,
) -> Result<(), NetworkError> {
    if emoji.starts_with(':') && emoji.ends_with(':') && emoji.len() > 2 {
        return Err(NetworkError::BadRequest(
            "custom Discord emoji cannot be sent from XMPP".into(),
        ));
    }
    let id: u64 = msg
        .as_str()
        .parse()
        .map_err(|_| NetworkError::NotFound(format!("message {msg}")))?;
    let key = (id, emoji.to_string());
    let call = {
        let mut counts = inner.reactions.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() > 50_000 {
            counts.clear(); // bounded memory; worst case a shared reaction is removed early
        }
        let n = counts.entry(key.clone()).or_insert(0);
        if add {
            *n += 1;
            *n == 1
        } else {
            *n = n.saturating_sub(1);
            let last = *n == 0;
            if last {
                counts.remove(&key);
            }
            last
        }
    };
    if !call {
        return Ok(());
    }
    let path = format!(
        "/channels/{}/messages/{id}/reactions/{}/@me",
        t.channel,
        emoji_path(emoji)
    );
    let method = if add { Method::PUT } else { Method::DELETE };
    inner
        .rest
        .bot(method, &path, Body::None, "reacting")
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_usernames() {
        for (nick, want) in [
            ("juliet", "juliet"),
            ("", "XMPP user"),
            ("Discord fan", "D\u{200d}iscord fan"),
            ("clyde", "c\u{200d}lyde"),
            ("a\u{7}b", "ab"),
        ] {
            assert_eq!(username(nick), want);
        }
        assert_eq!(username(&"x".repeat(100)).chars().count(), 80);
    }
}
