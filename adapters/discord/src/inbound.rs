//! Discord -> core: gateway events and fetched history as remote events.

use crate::cache::{room_key, Cache, GuildNames, Kind};
use crate::markdown;
use crate::rest::Body;
use crate::session::Inner;
use causeway_api::*;
use reqwest::Method;
use serenity::model::channel::{Message, MessageReferenceKind, MessageType, ReactionType};
use serenity::model::event::Event;
use std::collections::HashMap;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ev(channel: u64, sender: u64, at: i64, kind: RemoteEventKind) -> RemoteEvent {
    RemoteEvent {
        room: room_key(channel),
        sender: RemoteUserId::new(sender.to_string()),
        at,
        kind,
    }
}

/// Handle one gateway event; true when it was READY, a GUILD_CREATE or a member chunk
/// (readiness may change).
pub async fn on_event(inner: &Inner, event: Event) -> bool {
    let mut out: Vec<RemoteEvent> = Vec::new();
    let readiness = matches!(
        event,
        Event::Ready(_) | Event::GuildCreate(_) | Event::GuildMembersChunk(_)
    );
    {
        let mut c = inner.write();
        let bot = c.bot;
        let scope = permission_scope(&event);
        let before = scope.map(|(guild, _)| c.restrictions(guild));
        match event {
            Event::Ready(r) => {
                c.bot = r.ready.user.id.get();
                c.pending = r.ready.guilds.iter().map(|g| g.id.get()).collect();
            }
            Event::GuildCreate(g) => {
                c.guild(&g.guild);
                if crate::gateway::wants_members(&g.guild, inner.cfg.intents()) {
                    // the gateway asked for them: chunks follow
                    c.chunks_awaited.insert(g.guild.id.get(), 0);
                }
            }
            Event::GuildMembersChunk(e) => {
                let gid = e.guild_id.get();
                for m in e.members.values() {
                    c.member(gid, m);
                }
                if let Some(seen) = c.chunks_awaited.get_mut(&gid) {
                    *seen += 1;
                    if *seen >= e.chunk_count {
                        c.chunks_awaited.remove(&gid);
                    }
                }
            }
            Event::ChannelCreate(e) => room_changed(&mut c, &e.channel, &mut out),
            Event::ChannelUpdate(e) => room_changed(&mut c, &e.channel, &mut out),
            Event::ThreadCreate(e) => room_changed(&mut c, &e.thread, &mut out),
            Event::ThreadUpdate(e) => room_changed(&mut c, &e.thread, &mut out),
            Event::ChannelDelete(e) => room_removed(&mut c, e.channel.id.get(), &mut out),
            Event::ThreadDelete(e) => room_removed(&mut c, e.thread.id.get(), &mut out),
            Event::GuildUpdate(e) => c.guild_update(&e.guild),
            Event::GuildRoleCreate(e) => c.role(e.role.guild_id.get(), &e.role),
            Event::GuildRoleUpdate(e) => c.role(e.role.guild_id.get(), &e.role),
            Event::GuildRoleDelete(e) => c.remove_role(e.guild_id.get(), e.role_id.get()),
            Event::GuildMemberAdd(e) => c.member(e.member.guild_id.get(), &e.member),
            Event::GuildMemberUpdate(e) => {
                let key = (e.guild_id.get(), e.user.id.get());
                let mut p = c.user(&e.user);
                if let Some(n) = e.nick.filter(|n| !n.is_empty()) {
                    p.name = n;
                }
                p.roles = e.roles.iter().map(|r| r.get()).collect();
                c.set_member(key.0, key.1, p);
            }
            Event::GuildMemberRemove(e) => {
                c.remove_member(e.guild_id.get(), e.user.id.get());
            }
            Event::MessageCreate(e) => {
                let m = e.message;
                if let (Some(g), Some(member)) = (m.guild_id, &m.member) {
                    let mut p = c.user(&m.author);
                    if let Some(n) = member.nick.clone().filter(|n| !n.is_empty()) {
                        p.name = n;
                    }
                    p.roles = member.roles.iter().map(|r| r.get()).collect();
                    c.set_member(g.get(), m.author.id.get(), p);
                } else if m.webhook_id.is_none() {
                    c.user(&m.author);
                }
                out.extend(message_event(&c, &m, true));
            }
            Event::MessageUpdate(u) => {
                let ours = u
                    .webhook_id
                    .flatten()
                    .is_some_and(|w| c.ours.contains(&w.get()));
                let author = u.author.as_ref().map(|a| a.id.get());
                if let (Some(content), Some(_), Some(author), false) = (
                    &u.content,
                    &u.edited_timestamp,
                    author,
                    ours || author == Some(bot),
                ) {
                    let guild = c.channels.get(&u.channel_id.get()).map(|ch| ch.guild);
                    let names = GuildNames { cache: &c, guild };
                    let mut parsed = markdown::parse(content, &names);
                    parsed.attachments = u
                        .attachments
                        .as_ref()
                        .map(|a| a.iter().map(attachment).collect())
                        .unwrap_or_default();
                    let at = u
                        .edited_timestamp
                        .map_or(now_ms(), |t| t.unix_timestamp() * 1000);
                    out.push(ev(
                        u.channel_id.get(),
                        author,
                        at,
                        RemoteEventKind::Edit {
                            target: RemoteMessageId::new(u.id.to_string()),
                            content: parsed,
                        },
                    ));
                }
            }
            Event::MessageDelete(d) => {
                out.push(retract(bot, d.channel_id.get(), d.message_id.get()))
            }
            Event::MessageDeleteBulk(d) => {
                let mut ids: Vec<u64> = d.ids.iter().map(|i| i.get()).collect();
                ids.sort();
                out.extend(
                    ids.into_iter()
                        .map(|id| retract(bot, d.channel_id.get(), id)),
                );
            }
            Event::ReactionAdd(e) => out.extend(reaction(bot, &e.reaction, true)),
            Event::ReactionRemove(e) => out.extend(reaction(bot, &e.reaction, false)),
            Event::ReactionRemoveAll(e) => out.push(ev(
                e.channel_id.get(),
                bot,
                now_ms(),
                RemoteEventKind::ReactionsCleared {
                    target: RemoteMessageId::new(e.message_id.to_string()),
                    emoji: None,
                },
            )),
            Event::ReactionRemoveEmoji(e) => out.push(ev(
                e.reaction.channel_id.get(),
                bot,
                now_ms(),
                RemoteEventKind::ReactionsCleared {
                    target: RemoteMessageId::new(e.reaction.message_id.to_string()),
                    emoji: Some(emoji_text(&e.reaction.emoji)),
                },
            )),
            Event::TypingStart(t) if t.user_id.get() != bot => {
                if let (Some(g), Some(m)) = (t.guild_id, &t.member) {
                    c.member(g.get(), m);
                }
                out.push(ev(
                    t.channel_id.get(),
                    t.user_id.get(),
                    now_ms(),
                    RemoteEventKind::Typing { active: true },
                ));
            }
            _ => {}
        }
        if let (Some((_, told)), Some(before)) = (scope, before) {
            restriction_changes(&c, &before, told, &mut out);
        }
    }
    for e in out {
        if inner.sink.send(e).await.is_err() {
            break;
        }
    }
    readiness
}

fn retract(bot: u64, channel: u64, id: u64) -> RemoteEvent {
    // MESSAGE_DELETE does not say who deleted: the core shows it as the room's doing.
    ev(
        channel,
        bot,
        now_ms(),
        RemoteEventKind::Retract {
            target: RemoteMessageId::new(id.to_string()),
            by_author: false,
        },
    )
}

fn room_changed(
    c: &mut Cache,
    channel: &serenity::model::channel::GuildChannel,
    out: &mut Vec<RemoteEvent>,
) {
    let chan = c.channel(channel);
    if let Some(info) = c.room_summary(chan.id) {
        out.push(ev(
            chan.id,
            c.bot,
            now_ms(),
            RemoteEventKind::RoomChanged(info),
        ));
    }
}

/// The guild whose rooms an event may make restricted or not (roles, overwrites, a guild
/// again after an outage), and the room the event already reports, if any.
fn permission_scope(event: &Event) -> Option<(u64, Option<u64>)> {
    match event {
        Event::ChannelUpdate(e) => Some((e.channel.guild_id.get(), Some(e.channel.id.get()))),
        Event::GuildCreate(e) => Some((e.guild.id.get(), None)),
        Event::GuildUpdate(e) => Some((e.guild.id.get(), None)),
        Event::GuildRoleCreate(e) => Some((e.role.guild_id.get(), None)),
        Event::GuildRoleUpdate(e) => Some((e.role.guild_id.get(), None)),
        Event::GuildRoleDelete(e) => Some((e.guild_id.get(), None)),
        _ => None,
    }
}

/// RoomChanged for each room that was (un)restricted before and no longer is: a channel's
/// threads follow it, and a change of @everyone's role changes many rooms at once.
fn restriction_changes(
    c: &Cache,
    before: &HashMap<u64, bool>,
    told: Option<u64>,
    out: &mut Vec<RemoteEvent>,
) {
    let mut rooms: Vec<(&u64, &bool)> = before.iter().collect();
    rooms.sort();
    for (&id, &was) in rooms {
        let Some(info) = c.room_summary(id).filter(|i| i.restricted != was) else {
            continue;
        };
        if Some(id) != told {
            out.push(ev(id, c.bot, now_ms(), RemoteEventKind::RoomChanged(info)));
        }
    }
}

fn room_removed(c: &mut Cache, channel: u64, out: &mut Vec<RemoteEvent>) {
    if let Some(chan) = c.channels.remove(&channel) {
        c.hooks.remove(&channel);
        if chan.kind.is_room() {
            out.push(ev(channel, c.bot, now_ms(), RemoteEventKind::RoomRemoved));
        }
    }
}

fn emoji_text(e: &ReactionType) -> String {
    match e {
        ReactionType::Unicode(s) => s.clone(),
        // Custom emoji have no XEP-0444 form: shown by name.
        ReactionType::Custom { name, .. } => format!(":{}:", name.as_deref().unwrap_or("emoji")),
        _ => "?".into(),
    }
}

fn reaction(bot: u64, r: &serenity::model::channel::Reaction, added: bool) -> Option<RemoteEvent> {
    let user = r.user_id?.get();
    if user == bot {
        return None; // the bot reacts for XMPP users: their reactions are already known
    }
    Some(ev(
        r.channel_id.get(),
        user,
        now_ms(),
        RemoteEventKind::ReactionChanged {
            target: RemoteMessageId::new(r.message_id.to_string()),
            emoji: emoji_text(&r.emoji),
            added,
        },
    ))
}

fn attachment(a: &serenity::model::channel::Attachment) -> Attachment {
    Attachment {
        url: a.url.clone(),
        name: a.filename.clone(),
        content_type: a.content_type.clone(),
        size: Some(u64::from(a.size)),
    }
}

/// A Discord message as a remote event; None for system messages without text and, live,
/// for the echoes of our own webhook posts. History marks those as the core's own
/// (`TxnId::own_post`): never bridged back as a Discord user's.
pub fn message_event(c: &Cache, m: &Message, live: bool) -> Option<RemoteEvent> {
    let ours = m.webhook_id.is_some_and(|w| c.ours.contains(&w.get()));
    if (live && ours) || m.author.id.get() == c.bot {
        return None;
    }
    let readable = matches!(
        m.kind,
        MessageType::Regular | MessageType::InlineReply | MessageType::ChatInputCommand
    );
    let guild = m
        .guild_id
        .map(|g| g.get())
        .or_else(|| c.channels.get(&m.channel_id.get()).map(|ch| ch.guild));
    let names = GuildNames { cache: c, guild };
    let mut content = markdown::parse(&m.content, &names);
    for e in &m.embeds {
        // Link previews of URLs already in the text add nothing.
        if e.url
            .as_ref()
            .is_some_and(|u| m.content.contains(u.as_str()))
            && e.kind.as_deref() != Some("rich")
        {
            continue;
        }
        let lines: Vec<String> = [&e.title, &e.description, &e.url]
            .iter()
            .filter_map(|x| x.as_ref().map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect();
        if lines.is_empty() {
            continue;
        }
        if !content.text.is_empty() {
            content.text.push('\n');
        }
        let start = content.text.len();
        content.text.push_str(&lines.join("\n"));
        content.spans.push(Span {
            start,
            end: content.text.len(),
            style: Style::Quote,
        });
    }
    for s in &m.sticker_items {
        if !content.text.is_empty() {
            content.text.push('\n');
        }
        content.text.push_str(&format!("[sticker: {}]", s.name));
    }
    content.attachments = m.attachments.iter().map(attachment).collect();
    if !readable && content.text.is_empty()
        || content.text.is_empty() && content.attachments.is_empty()
    {
        return None;
    }
    let reply_to = m
        .message_reference
        .as_ref()
        .filter(|r| r.kind == MessageReferenceKind::Default && m.kind == MessageType::InlineReply)
        .and_then(|r| r.message_id)
        .map(|id| RemoteMessageId::new(id.to_string()));
    Some(ev(
        m.channel_id.get(),
        m.author.id.get(),
        m.timestamp.unix_timestamp() * 1000 + i64::from(m.timestamp.nanosecond() / 1_000_000),
        RemoteEventKind::Message {
            id: RemoteMessageId::new(m.id.to_string()),
            content,
            reply_to,
            // (our own webhook's posts in history: the core's own, even those it never
            // stored because it stopped between posting and storing)
            txn: ours.then(TxnId::own_post),
        },
    ))
}

/// Messages of a channel, oldest first: those after `after`, or the latest ones. Skipped
/// messages (system ones) do not shorten the answer: the core pages until a short page.
pub async fn history(
    inner: &Inner,
    channel: u64,
    after: Option<&RemoteMessageId>,
    limit: usize,
) -> Result<Vec<RemoteEvent>, NetworkError> {
    let mut out: Vec<RemoteEvent> = Vec::new();
    let mut cursor: Option<u64> = after.and_then(|a| a.as_str().parse().ok());
    let forward = after.is_some();
    loop {
        let want = (limit - out.len()).clamp(1, 100);
        let path = match (forward, cursor) {
            (true, Some(a)) => format!("/channels/{channel}/messages?after={a}&limit={want}"),
            (false, Some(b)) => format!("/channels/{channel}/messages?before={b}&limit={want}"),
            _ => format!("/channels/{channel}/messages?limit={want}"),
        };
        let v = inner
            .rest
            .bot(Method::GET, &path, Body::None, "the channel's history")
            .await?;
        let mut page: Vec<Message> = serde_json::from_value(v)
            .map_err(|e| NetworkError::Other(format!("the channel's history: {e}")))?;
        page.sort_by_key(|m| m.id);
        let got = page.len();
        cursor = if forward {
            page.last().map(|m| m.id.get())
        } else {
            page.first().map(|m| m.id.get())
        };
        let events: Vec<RemoteEvent> = {
            let mut c = inner.write();
            for m in &page {
                if m.webhook_id.is_none() {
                    c.user(&m.author);
                }
            }
            page.iter()
                .filter_map(|m| message_event(&c, m, false))
                .collect()
        };
        if forward {
            out.extend(events);
        } else {
            let mut older = events;
            older.extend(out);
            out = older;
        }
        if got < want || out.len() >= limit || cursor.is_none() {
            break;
        }
    }
    if !forward && out.len() > limit {
        out.drain(..out.len() - limit);
    }
    out.truncate(limit.max(1));
    Ok(out)
}

/// A pasted address: a discord.com channel link, `<#id>`, `#name`, `<@id>`, or an id.
pub fn resolve(c: &Cache, address: &str) -> Result<Resolved, NetworkError> {
    let a = address.trim();
    let num = |s: &str| s.parse::<u64>().ok();
    let link = [
        "https://discord.com/channels/",
        "https://discordapp.com/channels/",
        "https://ptb.discord.com/channels/",
        "https://canary.discord.com/channels/",
    ]
    .iter()
    .find_map(|p| a.strip_prefix(p));
    let channel = if let Some(rest) = link {
        rest.split('/').nth(1).and_then(num)
    } else if let Some(id) = a.strip_prefix("<#").and_then(|r| r.strip_suffix('>')) {
        num(id)
    } else if let Some(name) = a.strip_prefix('#') {
        let mut found: Vec<_> = c
            .channels
            .values()
            .filter(|ch| ch.kind.is_room() && ch.name == name)
            .collect();
        found.sort_by_key(|ch| ch.kind == Kind::Thread);
        found.first().map(|ch| ch.id)
    } else {
        num(a).filter(|id| c.channels.contains_key(id))
    };
    if let Some(id) = channel {
        return match c.channels.get(&id) {
            Some(ch) if ch.kind.is_room() => Ok(Resolved::Room(room_key(id))),
            _ => Err(NetworkError::NotFound(format!(
                "no Discord channel {id} the bot can see"
            ))),
        };
    }
    let user = a
        .strip_prefix("<@")
        .and_then(|r| r.strip_suffix('>'))
        .map(|r| r.trim_start_matches('!'))
        .and_then(num)
        .or_else(|| num(a));
    match user {
        Some(u) => Ok(Resolved::User(RemoteUserId::new(u.to_string()))),
        None => Err(NetworkError::NotFound(format!(
            "{address:?} names no Discord channel or user"
        ))),
    }
}
