//! The REST API under /api/v10, the CDN under /cdn, and the gateway socket at /gateway.

use crate::{gateway, model, Call, FakeDiscord, State};
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn router(fake: FakeDiscord) -> Router {
    let gw = fake.clone();
    Router::new()
        .route(
            "/gateway",
            axum::routing::get(move |ws: WebSocketUpgrade| {
                let fake = gw.clone();
                async move { ws.on_upgrade(move |socket| gateway::serve(fake, socket)) }
            }),
        )
        .fallback(move |req: Request| {
            let fake = fake.clone();
            async move { handle(fake, req).await }
        })
}

struct Reply {
    status: StatusCode,
    body: Option<Value>,
}

fn ok(v: Value) -> Reply {
    Reply {
        status: StatusCode::OK,
        body: Some(v),
    }
}

fn no_content() -> Reply {
    Reply {
        status: StatusCode::NO_CONTENT,
        body: None,
    }
}

fn err(status: StatusCode, code: u32, message: &str) -> Reply {
    Reply {
        status,
        body: Some(model::error(code, message)),
    }
}

fn not_found(what: &str, code: u32) -> Reply {
    err(StatusCode::NOT_FOUND, code, &format!("Unknown {what}"))
}

/// What Discord answers about a channel the bot may not see.
fn missing_access() -> Reply {
    err(StatusCode::FORBIDDEN, 50001, "Missing Access")
}

fn too_long() -> Reply {
    Reply {
        status: StatusCode::BAD_REQUEST,
        body: Some(json!({
            "message": "Invalid Form Body", "code": 50035,
            "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}
        })),
    }
}

async fn handle(fake: FakeDiscord, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if let Some(file) = path.strip_prefix("/cdn") {
        return cdn(&fake, &path, file);
    }
    let Some(api) = path.strip_prefix("/api/v10") else {
        return (StatusCode::NOT_FOUND, "not an API path").into_response();
    };
    let api = api.to_string();
    let method = req.method().clone();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let headers = req.headers().clone();
    let (body, files) = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let token = fake.token();
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bot {token}"));
    let mut call = Call {
        method: method.to_string(),
        path: api.clone(),
        query: query.clone(),
        body: body.clone(),
        files: files
            .iter()
            .map(|f| (f.0.clone(), f.1.clone(), f.3.len()))
            .collect(),
        authorized,
        limited: false,
    };
    let mut s = fake.lock();
    if let Some(retry_after) = s.take_limit(&api) {
        call.limited = true;
        s.calls.push(call);
        return limited(retry_after);
    }
    s.calls.push(call);
    let segs: Vec<String> = api
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let public = matches!(segs.as_slice(), ["webhooks", _, _, ..]);
    let reply = if !public && !authorized {
        err(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
    } else {
        route(&mut s, &method, &segs, &query, body, files)
    };
    respond(reply, &api)
}

/// (field name, filename, content type, bytes)
type Files = Vec<(String, String, String, Vec<u8>)>;

async fn read_body(req: Request) -> Result<(Value, Files), Response> {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bad = |m: String| (StatusCode::BAD_REQUEST, m).into_response();
    if ctype.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| bad(e.to_string()))?;
        let (mut body, mut files) = (Value::Null, Vec::new());
        while let Some(field) = mp.next_field().await.map_err(|e| bad(e.to_string()))? {
            let name = field.name().unwrap_or("").to_string();
            let filename = field.file_name().map(str::to_string);
            let ctype = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let bytes = field.bytes().await.map_err(|e| bad(e.to_string()))?;
            if name == "payload_json" {
                body = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
            } else if let Some(f) = filename {
                files.push((name, f, ctype, bytes.to_vec()));
            }
        }
        return Ok((body, files));
    }
    let bytes: Bytes = axum::body::to_bytes(req.into_body(), 64 << 20)
        .await
        .map_err(|e| bad(e.to_string()))?;
    if bytes.is_empty() {
        return Ok((Value::Null, Vec::new()));
    }
    if !ctype.starts_with("application/json") {
        return Err(bad(format!("unexpected content type {ctype:?}")));
    }
    let v = serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad JSON: {e}")))?;
    Ok((v, Vec::new()))
}

fn respond(reply: Reply, path: &str) -> Response {
    let mut headers = HeaderMap::new();
    let bucket = format!("{:x}", path.len() * 7919);
    for (k, v) in [
        ("x-ratelimit-limit", "5".to_string()),
        ("x-ratelimit-remaining", "4".to_string()),
        ("x-ratelimit-reset-after", "1.000".to_string()),
        ("x-ratelimit-bucket", bucket),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
    match reply.body {
        Some(b) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            (reply.status, headers, b.to_string()).into_response()
        }
        None => (reply.status, headers).into_response(),
    }
}

fn limited(retry_after: f64) -> Response {
    let mut headers = HeaderMap::new();
    let secs = retry_after.ceil().max(1.0) as u64;
    for (k, v) in [
        ("retry-after", secs.to_string()),
        ("x-ratelimit-limit", "5".into()),
        ("x-ratelimit-remaining", "0".into()),
        ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
        ("x-ratelimit-scope", "user".into()),
        ("via", "1.1 google".into()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false});
    (StatusCode::TOO_MANY_REQUESTS, headers, body.to_string()).into_response()
}

fn cdn(fake: &FakeDiscord, path: &str, file: &str) -> Response {
    if file.starts_with("/avatars/") || file.starts_with("/icons/") || file.starts_with("/emojis/")
    {
        return ([(header::CONTENT_TYPE, "image/png")], TINY_PNG.to_vec()).into_response();
    }
    match fake.lock().files.get(path) {
        Some((ctype, bytes)) => {
            ([(header::CONTENT_TYPE, ctype.clone())], bytes.clone()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// A 1x1 PNG.
const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, 0x49, 0x44, 0x41, 0x54,
    0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(
    s: &mut State,
    method: &Method,
    segs: &[&str],
    query: &BTreeMap<String, String>,
    body: Value,
    files: Files,
) -> Reply {
    let m = method.as_str();
    match (m, segs) {
        ("GET", ["gateway"]) => ok(json!({"url": s.gateway_url()})),
        ("GET", ["gateway", "bot"]) => ok(json!({
            "url": s.gateway_url(), "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 1000 - s.identifies, "reset_after": 86_400_000, "max_concurrency": 1}
        })),
        ("GET", ["users", "@me"]) => ok(s.bot.clone()),
        ("GET", ["users", "@me", "guilds"]) => {
            let bot = s.bot["id"].as_str().unwrap_or_default();
            let list: Vec<Value> = s
                .guilds
                .iter()
                .map(|g| json!({"id": g.id, "name": g.name, "icon": model::image_hash(&g.id), "banner": null,
                    "owner": g.owner == bot, "permissions": "2248473465835073", "features": ["COMMUNITY"]}))
                .collect();
            ok(json!(list))
        }
        ("GET", ["users", id]) => match s.users.get(*id) {
            Some(u) => ok(u.clone()),
            None => not_found("User", 10013),
        },
        ("GET", ["guilds", g, rest @ ..]) => guild_get(s, g, rest, query),
        ("GET", ["channels", c]) => match s.channels.get(*c) {
            Some(_) if !s.bot_can_view(c) => missing_access(),
            Some(ch) => ok(ch.clone()),
            None => not_found("Channel", 10003),
        },
        (_, ["channels", c, rest @ ..]) => channel_route(s, m, c, rest, query, body, files),
        (_, ["webhooks", w, rest @ ..]) => webhook_route(s, m, w, rest, query, body, files),
        _ => err(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

fn guild_get(s: &State, g: &str, rest: &[&str], query: &BTreeMap<String, String>) -> Reply {
    let Some(guild) = s.guilds.iter().find(|x| x.id == g) else {
        return not_found("Guild", 10004);
    };
    let in_guild = |c: &&Value| c["guild_id"].as_str() == Some(g);
    match rest {
        [] => ok(s.guild_object(guild)),
        ["channels"] => ok(json!(s
            .channels
            .values()
            .filter(in_guild)
            .filter(|c| !c["thread_metadata"].is_object())
            .collect::<Vec<_>>())),
        ["threads", "active"] => ok(json!({
            "threads": s.channels.values().filter(in_guild).filter(|c| c["thread_metadata"].is_object()).collect::<Vec<_>>(),
            "members": []
        })),
        ["roles"] => ok(json!(guild.roles)),
        ["webhooks"] => ok(json!(s
            .webhooks
            .values()
            .filter(|w| w["guild_id"].as_str() == Some(g))
            .collect::<Vec<_>>())),
        ["members"] => {
            let limit = query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(1usize);
            let after: u64 = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
            let list: Vec<&Value> = guild
                .members
                .iter()
                .filter(|(id, _)| id.parse::<u64>().unwrap_or(0) > after)
                .map(|(_, m)| m)
                .take(limit.min(1000))
                .collect();
            ok(json!(list))
        }
        ["members", u] => match guild.members.get(*u) {
            Some(m) => ok(m.clone()),
            None => not_found("Member", 10007),
        },
        _ => err(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

fn channel_route(
    s: &mut State,
    m: &str,
    c: &str,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    body: Value,
    files: Files,
) -> Reply {
    if !s.channels.contains_key(c) {
        return not_found("Channel", 10003);
    }
    if !s.bot_can_view(c) {
        return missing_access();
    }
    let bot = s.bot.clone();
    let bot_id = bot["id"].as_str().unwrap_or_default().to_string();
    match (m, rest) {
        ("GET", ["messages"]) => ok(json!(list_messages(s, c, query))),
        ("POST", ["messages"]) => {
            let content = body["content"].as_str().unwrap_or("").to_string();
            if content.chars().count() > 2000 {
                return too_long();
            }
            let atts: Vec<Value> = files
                .into_iter()
                .map(|(_, name, ctype, bytes)| s.store_file(c, &name, &ctype, bytes))
                .collect();
            let reply = body["message_reference"]["message_id"]
                .as_str()
                .map(str::to_string);
            let allowed = allowed_users(&body);
            match s.create_message(
                c,
                bot,
                &content,
                None,
                atts,
                Vec::new(),
                reply.as_deref(),
                allowed,
            ) {
                Some(id) => ok(s.find_message(c, &id).cloned().unwrap_or(Value::Null)),
                None => not_found("Channel", 10003),
            }
        }
        ("POST", ["messages", "bulk-delete"]) => {
            let ids: Vec<String> = body["messages"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for id in &ids {
                s.remove_message(c, id);
            }
            let guild = s.guild_of(c);
            s.dispatch(
                "MESSAGE_DELETE_BULK",
                json!({"ids": ids, "channel_id": c, "guild_id": guild}),
            );
            no_content()
        }
        ("GET", ["messages", id]) => match s.find_message(c, id) {
            Some(msg) => ok(msg.clone()),
            None => not_found("Message", 10008),
        },
        ("PATCH", ["messages", id]) => {
            let Some(msg) = s.find_message(c, id) else {
                return not_found("Message", 10008);
            };
            if msg["author"]["id"].as_str() != Some(bot_id.as_str()) {
                return err(
                    StatusCode::FORBIDDEN,
                    50005,
                    "Cannot edit a message authored by another user",
                );
            }
            let content = body["content"].as_str().unwrap_or("").to_string();
            match s.update_message(c, id, &content) {
                Some(v) => ok(v),
                None => not_found("Message", 10008),
            }
        }
        ("DELETE", ["messages", id]) => {
            if s.delete_message(c, id) {
                no_content()
            } else {
                not_found("Message", 10008)
            }
        }
        ("PUT", ["messages", id, "reactions", e, "@me"]) => reaction(s, &bot_id, c, id, e, true),
        ("DELETE", ["messages", id, "reactions", e, "@me"]) => {
            reaction(s, &bot_id, c, id, e, false)
        }
        ("DELETE", ["messages", id, "reactions", e, user]) => reaction(s, user, c, id, e, false),
        ("GET", ["messages", id, "reactions", e]) => {
            let key = crate::model_emoji(e).0;
            let users: Vec<Value> = s
                .reactions
                .get(*id)
                .and_then(|l| l.iter().find(|(k, _, _)| *k == key))
                .map(|(_, _, u)| u.iter().filter_map(|u| s.users.get(u).cloned()).collect())
                .unwrap_or_default();
            ok(json!(users))
        }
        ("POST", ["typing"]) => {
            s.typing(&bot_id, c);
            no_content()
        }
        ("GET", ["webhooks"]) => ok(json!(s
            .webhooks
            .values()
            .filter(|w| w["channel_id"].as_str() == Some(c))
            .collect::<Vec<_>>())),
        ("POST", ["webhooks"]) => {
            let name = body["name"].as_str().unwrap_or("");
            let lower = name.to_lowercase();
            if name.is_empty()
                || name.chars().count() > 80
                || lower.contains("clyde")
                || lower.contains("discord")
            {
                return err(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body: name");
            }
            let kind = s
                .channels
                .get(c)
                .and_then(|x| x["type"].as_u64())
                .unwrap_or(0);
            if ![0, 5, 15, 16].contains(&kind) {
                return err(
                    StatusCode::BAD_REQUEST,
                    50024,
                    "Cannot execute action on this channel type",
                );
            }
            let id = s.ids.next();
            let token = format!("wh-token-{id}");
            let guild = s.guild_of(c).as_str().unwrap_or_default().to_string();
            let w = model::webhook(&id, &token, &guild, c, name, &bot);
            s.webhooks.insert(id, w.clone());
            ok(w)
        }
        _ => err(StatusCode::METHOD_NOT_ALLOWED, 0, "405: Method Not Allowed"),
    }
}

fn reaction(s: &mut State, user: &str, c: &str, id: &str, emoji: &str, add: bool) -> Reply {
    if s.reaction(user, c, id, emoji, add) {
        no_content()
    } else {
        not_found("Message", 10008)
    }
}

/// GET /channels/{id}/messages: newest first, `limit` 1..=100 (default 50), with
/// `before`, `after` or `around`.
pub(crate) fn list_messages(s: &State, c: &str, q: &BTreeMap<String, String>) -> Vec<Value> {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 100);
    let all = s.messages.get(c).cloned().unwrap_or_default();
    let id_of = |m: &Value| {
        m["id"]
            .as_str()
            .and_then(|i| i.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
    let mut picked: Vec<Value> = if let Some(after) = num("after") {
        all.into_iter()
            .filter(|m| id_of(m) > after)
            .take(limit)
            .collect()
    } else if let Some(before) = num("before") {
        let older: Vec<Value> = all.into_iter().filter(|m| id_of(m) < before).collect();
        older[older.len().saturating_sub(limit)..].to_vec()
    } else if let Some(around) = num("around") {
        let pos = all
            .iter()
            .position(|m| id_of(m) >= around)
            .unwrap_or(all.len());
        let start = pos.saturating_sub(limit / 2);
        all[start..(start + limit).min(all.len())].to_vec()
    } else {
        all[all.len().saturating_sub(limit)..].to_vec()
    };
    picked.reverse();
    picked
}

fn allowed_users(body: &Value) -> Option<Vec<String>> {
    let am = body.get("allowed_mentions")?;
    let parse: Vec<&str> = am["parse"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if parse.contains(&"users") {
        return None;
    }
    Some(
        am["users"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn webhook_route(
    s: &mut State,
    m: &str,
    w: &str,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    body: Value,
    files: Files,
) -> Reply {
    let Some(hook) = s.webhooks.get(w).cloned() else {
        return not_found("Webhook", 10015);
    };
    if let Some(token) = rest.first() {
        if hook["token"].as_str() != Some(*token) {
            return err(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token");
        }
    }
    let channel = hook["channel_id"].as_str().unwrap_or_default().to_string();
    // Messages of a thread live in the thread, reached with ?thread_id=.
    let target = match query.get("thread_id") {
        Some(t) => {
            let parent = s.channels.get(t).map(|c| c["parent_id"].clone());
            if parent.as_ref().and_then(Value::as_str) != Some(channel.as_str()) {
                return not_found("Channel", 10003);
            }
            t.clone()
        }
        None => channel.clone(),
    };
    match (m, rest) {
        ("GET", []) => ok(hook),
        ("DELETE", []) => {
            s.webhooks.remove(w);
            no_content()
        }
        ("POST", [_token]) => {
            let content = body["content"].as_str().unwrap_or("").to_string();
            if content.is_empty()
                && files.is_empty()
                && body["embeds"].as_array().is_none_or(|e| e.is_empty())
            {
                return err(
                    StatusCode::BAD_REQUEST,
                    50006,
                    "Cannot send an empty message",
                );
            }
            if content.chars().count() > 2000 {
                return too_long();
            }
            let name = body["username"]
                .as_str()
                .unwrap_or(hook["name"].as_str().unwrap_or(""));
            let lower = name.to_lowercase();
            if lower.contains("clyde") || lower.contains("discord") || name.chars().count() > 80 {
                return err(
                    StatusCode::BAD_REQUEST,
                    50035,
                    "Invalid Form Body: username",
                );
            }
            if s.channels
                .get(&channel)
                .and_then(|c| c["type"].as_u64())
                .is_some_and(|k| k == 15 || k == 16)
                && target == channel
            {
                return err(
                    StatusCode::BAD_REQUEST,
                    220001,
                    "Webhooks posted to forum channels must have a thread_name or thread_id",
                );
            }
            let author = json!({
                "id": w, "username": name, "avatar": null, "discriminator": "0000",
                "global_name": null, "bot": true, "public_flags": 0, "flags": 0
            });
            let atts: Vec<Value> = files
                .into_iter()
                .map(|(_, fname, ctype, bytes)| s.store_file(&target, &fname, &ctype, bytes))
                .collect();
            let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
            let allowed = allowed_users(&body);
            let Some(id) = s.create_message(
                &target,
                author,
                &content,
                Some(w),
                atts,
                embeds,
                None,
                allowed,
            ) else {
                return not_found("Channel", 10003);
            };
            if query.get("wait").is_some_and(|v| v == "true") {
                ok(s.find_message(&target, &id).cloned().unwrap_or(Value::Null))
            } else {
                no_content()
            }
        }
        (_, [_token, "messages", id]) => {
            let Some(msg) = s.find_message(&target, id) else {
                return not_found("Message", 10008);
            };
            if msg["webhook_id"].as_str() != Some(w) {
                return not_found("Message", 10008);
            }
            match m {
                "GET" => ok(msg.clone()),
                "PATCH" => {
                    let content = body["content"].as_str().unwrap_or("").to_string();
                    if content.chars().count() > 2000 {
                        return too_long();
                    }
                    match s.update_message(&target, id, &content) {
                        Some(v) => ok(v),
                        None => not_found("Message", 10008),
                    }
                }
                "DELETE" => {
                    s.delete_message(&target, id);
                    no_content()
                }
                _ => err(StatusCode::METHOD_NOT_ALLOWED, 0, "405: Method Not Allowed"),
            }
        }
        _ => err(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

impl State {
    pub(crate) fn gateway_url(&self) -> String {
        format!("{}/gateway", self.base.replacen("http://", "ws://", 1))
    }

    fn take_limit(&mut self, path: &str) -> Option<f64> {
        let l = self
            .limits
            .iter_mut()
            .find(|l| l.times > 0 && path.contains(&l.path_contains))?;
        l.times -= 1;
        Some(l.retry_after)
    }
}
