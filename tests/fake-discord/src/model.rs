//! Discord's objects as its documentation describes them (User, Guild, Channel, Member,
//! Message, Attachment, Webhook, Role), snowflakes and ISO 8601 timestamps.

use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The first millisecond of 2015, Discord's epoch for snowflakes.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Snowflakes: milliseconds since the Discord epoch << 22, then worker, process, increment.
/// Strictly increasing within one fake.
#[derive(Default)]
pub struct Snowflakes {
    last: u64,
}

impl Snowflakes {
    pub fn next(&mut self) -> String {
        let fresh = (now_ms().saturating_sub(DISCORD_EPOCH_MS)) << 22 | (1 << 17);
        self.last = fresh.max(self.last + 1);
        self.last.to_string()
    }
}

/// The time a snowflake was made, in Unix milliseconds.
pub fn snowflake_ms(id: &str) -> u64 {
    id.parse::<u64>()
        .map(|n| (n >> 22) + DISCORD_EPOCH_MS)
        .unwrap_or(0)
}

/// ISO 8601 with microseconds and an explicit offset, as Discord writes timestamps.
pub fn iso(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}000+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// An image hash as Discord gives them: 32 hex digits.
pub fn image_hash(id: &str) -> String {
    let n: u128 = id.parse().unwrap_or(0);
    format!(
        "{:032x}",
        n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

pub fn user(id: &str, username: &str, global_name: Option<&str>, bot: bool) -> Value {
    json!({
        "id": id,
        "username": username,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": image_hash(id),
        "bot": bot,
        "system": false,
        "banner": null,
        "accent_color": null,
        "public_flags": 0,
        "flags": 0,
        "avatar_decoration_data": null
    })
}

pub fn role(id: &str, name: &str, position: i64) -> Value {
    json!({
        "id": id,
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": position,
        "permissions": "2248473465835073",
        "managed": false,
        "mentionable": true,
        "flags": 0
    })
}

pub fn member(user: &Value, nick: Option<&str>, joined_ms: u64) -> Value {
    json!({
        "user": user,
        "nick": nick,
        "avatar": null,
        "banner": null,
        "roles": [],
        "joined_at": iso(joined_ms),
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null
    })
}

/// A guild channel: text (0), category (4), announcement (5), forum (15), ...
pub fn channel(
    id: &str,
    guild: &str,
    name: &str,
    kind: u8,
    parent: Option<&str>,
    pos: i64,
) -> Value {
    let mut c = json!({
        "id": id,
        "type": kind,
        "guild_id": guild,
        "position": pos,
        "permission_overwrites": [],
        "name": name,
        "nsfw": false,
        "parent_id": parent,
        "flags": 0
    });
    if kind != 4 {
        c["topic"] = Value::Null;
        c["last_message_id"] = Value::Null;
        c["rate_limit_per_user"] = json!(0);
    }
    if kind == 15 || kind == 16 {
        c["available_tags"] = json!([]);
        c["default_reaction_emoji"] = Value::Null;
        c["default_sort_order"] = Value::Null;
        c["default_forum_layout"] = json!(0);
    }
    c
}

/// What names a thread: its id, guild, parent channel, name and creator (`owner_id`).
pub struct ThreadParts<'a> {
    pub id: &'a str,
    pub guild: &'a str,
    pub parent: &'a str,
    pub name: &'a str,
    pub owner: &'a str,
}

/// A thread of `kind` (public 11, private 12, announcement 10) in `parent`.
pub fn thread(t: ThreadParts<'_>, kind: u8, now: u64) -> Value {
    let ThreadParts {
        id,
        guild,
        parent,
        name,
        owner,
    } = t;
    let mut v = json!({
        "id": id,
        "type": kind,
        "guild_id": guild,
        "parent_id": parent,
        "owner_id": owner,
        "name": name,
        "last_message_id": null,
        "message_count": 0,
        "member_count": 1,
        "rate_limit_per_user": 0,
        "total_message_sent": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": false,
            "auto_archive_duration": 1440,
            "archive_timestamp": iso(now),
            "locked": false,
            "create_timestamp": iso(now)
        }
    });
    if kind == 12 {
        v["thread_metadata"]["invitable"] = json!(true);
    }
    v
}

/// A guild object (GET /guilds/{id}); GUILD_CREATE adds its extra fields to it.
pub fn guild(id: &str, name: &str, owner: &str, roles: &[Value]) -> Value {
    json!({
        "id": id,
        "name": name,
        "icon": image_hash(id),
        "icon_hash": null,
        "splash": null,
        "discovery_splash": null,
        "owner_id": owner,
        "afk_channel_id": null,
        "afk_timeout": 300,
        "widget_enabled": false,
        "widget_channel_id": null,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": roles,
        "emojis": [],
        "features": ["COMMUNITY"],
        "mfa_level": 0,
        "application_id": null,
        "system_channel_id": null,
        "system_channel_flags": 0,
        "rules_channel_id": null,
        "max_presences": null,
        "max_members": 500000,
        "vanity_url_code": null,
        "description": null,
        "banner": null,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": null,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "approximate_member_count": null,
        "approximate_presence_count": null,
        "welcome_screen": null,
        "nsfw_level": 0,
        "stickers": [],
        "premium_progress_bar_enabled": false,
        "safety_alerts_channel_id": null,
        "incidents_data": null
    })
}

pub fn attachment(id: &str, filename: &str, size: usize, url: &str, content_type: &str) -> Value {
    json!({
        "id": id,
        "filename": filename,
        "size": size,
        "url": url,
        "proxy_url": url,
        "content_type": content_type,
        "flags": 0
    })
}

/// A message object. `author` is a user object (a webhook's pseudo-user for webhook posts).
pub struct MessageParts<'a> {
    pub id: &'a str,
    pub channel: &'a str,
    pub author: Value,
    pub content: &'a str,
    pub ms: u64,
    pub mentions: Vec<Value>,
    pub attachments: Vec<Value>,
    pub embeds: Vec<Value>,
    pub webhook: Option<&'a str>,
    pub reference: Option<(Value, Value)>,
}

pub fn message(p: MessageParts<'_>) -> Value {
    let mut m = json!({
        "id": p.id,
        "channel_id": p.channel,
        "author": p.author,
        "content": p.content,
        "timestamp": iso(p.ms),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": p.mentions,
        "mention_roles": [],
        "attachments": p.attachments,
        "embeds": p.embeds,
        "pinned": false,
        "type": if p.reference.is_some() { 19 } else { 0 },
        "flags": 0,
        "components": []
    });
    if let Some(w) = p.webhook {
        m["webhook_id"] = json!(w);
    }
    if let Some((reference, referenced)) = p.reference {
        m["message_reference"] = reference;
        m["referenced_message"] = referenced;
    }
    m
}

pub fn webhook(id: &str, token: &str, guild: &str, channel: &str, name: &str, by: &Value) -> Value {
    json!({
        "id": id,
        "type": 1,
        "guild_id": guild,
        "channel_id": channel,
        "user": by,
        "name": name,
        "avatar": null,
        "token": token,
        "application_id": by["id"]
    })
}

/// An error body: `{"message": .., "code": ..}` (JSON error codes of the API reference).
pub fn error(code: u32, message: &str) -> Value {
    json!({"message": message, "code": code})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        for (ms, want) in [
            (0, "1970-01-01T00:00:00.000000+00:00"),
            (951_782_400_123, "2000-02-29T00:00:00.123000+00:00"),
            (1_764_547_200_000, "2025-12-01T00:00:00.000000+00:00"),
        ] {
            assert_eq!(iso(ms), want);
        }
    }

    #[test]
    fn snowflakes_increase_and_carry_time() {
        let mut s = Snowflakes::default();
        let (a, b) = (s.next(), s.next());
        assert!(b.parse::<u64>().ok() > a.parse::<u64>().ok());
        assert!(now_ms() - snowflake_ms(&a) < 5_000);
    }
}
