//! Member lists as the gateway gives them. GUILD_CREATE carries every member only while the
//! guild is small (at most the session's `large_threshold`, 50 unless IDENTIFY says otherwise,
//! 50..=250) and the session has the GUILD_PRESENCES intent; otherwise, having no presences
//! or voice states here, only the bot itself. The rest is asked for with REQUEST_GUILD_MEMBERS
//! (op 8) and comes as GUILD_MEMBERS_CHUNK dispatches of up to 1000 members, numbered with
//! `chunk_index` / `chunk_count` and carrying the request's `nonce`. The whole list
//! (`query: ""`, `limit: 0`) needs the GUILD_MEMBERS intent (a request without it is left
//! unanswered here) and is allowed once per guild and session every 30 s
//! ([`crate::Options::member_request_window`]); sooner gets a RATE_LIMITED dispatch.

use crate::{GuildState, State, INTENT_GUILD_MEMBERS, INTENT_GUILD_PRESENCES};
use serde_json::{json, Value};

/// Members per GUILD_MEMBERS_CHUNK.
const CHUNK: usize = 1000;
/// Most members a query or a list of ids returns.
const QUERY_LIMIT: usize = 100;

/// What one gateway session is sent of member lists.
#[derive(Clone, Copy)]
pub(crate) struct View {
    pub intents: u64,
    pub large_threshold: u64,
}

impl View {
    pub fn from_identify(d: &Value) -> View {
        View {
            intents: d["intents"].as_u64().unwrap_or(0),
            large_threshold: d["large_threshold"].as_u64().unwrap_or(50).clamp(50, 250),
        }
    }
}

/// GUILD_CREATE's `large` and `members` for a session.
pub(crate) fn in_guild_create(g: &GuildState, bot: &str, view: View) -> (bool, Vec<Value>) {
    let large = g.members.len() as u64 > view.large_threshold;
    let members = if !large && view.intents & INTENT_GUILD_PRESENCES != 0 {
        g.members.values().cloned().collect()
    } else {
        g.members.get(bot).cloned().into_iter().collect()
    };
    (large, members)
}

impl State {
    /// Seconds before `session` may ask for the whole list of `guild` again (None: now; the
    /// request is counted).
    fn full_request_wait(&mut self, session: &str, guild: &str) -> Option<f64> {
        let window = self.opts.member_request_window;
        let sess = self.sessions.get_mut(session)?;
        let now = std::time::Instant::now();
        if let Some(last) = sess.full_requests.get(guild) {
            let since = now.duration_since(*last);
            if since < window {
                return Some((window - since).as_secs_f64());
            }
        }
        sess.full_requests.insert(guild.to_string(), now);
        None
    }

    /// REQUEST_GUILD_MEMBERS from `session`: its chunks, to that session only.
    pub(crate) fn request_members(&mut self, session: &str, d: &Value) {
        let Some(view) = self.sessions.get(session).map(|s| s.view) else {
            return;
        };
        let gid = d["guild_id"].as_str().unwrap_or_default();
        let Some(gi) = self.guilds.iter().position(|g| g.id == gid) else {
            return;
        };
        let query = d["query"].as_str();
        let limit = d["limit"].as_u64().unwrap_or(0) as usize;
        let whole = d["user_ids"].as_array().is_none() && query == Some("") && limit == 0;
        if whole {
            if view.intents & INTENT_GUILD_MEMBERS == 0 {
                return;
            }
            if let Some(wait) = self.full_request_wait(session, gid) {
                let limited = json!({"opcode": 8, "retry_after": wait,
                    "meta": {"guild_id": gid, "nonce": d["nonce"]}});
                self.member_requests_limited += 1;
                return self.send_to(session, "RATE_LIMITED", limited);
            }
        }
        let g = &self.guilds[gi];
        let mut not_found = Vec::new();
        let members: Vec<Value> = if let Some(ids) = d["user_ids"].as_array() {
            ids.iter()
                .filter_map(Value::as_str)
                .take(QUERY_LIMIT)
                .filter_map(|id| {
                    let m = g.members.get(id).cloned();
                    if m.is_none() {
                        not_found.push(json!(id));
                    }
                    m
                })
                .collect()
        } else {
            match query {
                Some("") if limit == 0 => g.members.values().cloned().collect(),
                Some(q) => {
                    let q = q.to_lowercase();
                    g.members
                        .values()
                        .filter(|m| {
                            m["user"]["username"]
                                .as_str()
                                .is_some_and(|n| n.to_lowercase().starts_with(&q))
                        })
                        .take(if limit == 0 {
                            QUERY_LIMIT
                        } else {
                            limit.min(QUERY_LIMIT)
                        })
                        .cloned()
                        .collect()
                }
                None => return,
            }
        };
        let chunks: Vec<&[Value]> = if members.is_empty() {
            vec![&[]]
        } else {
            members.chunks(CHUNK).collect()
        };
        let count = chunks.len();
        let frames: Vec<Value> = chunks
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let mut c = json!({
                    "guild_id": gid,
                    "members": part,
                    "chunk_index": i,
                    "chunk_count": count,
                });
                if !d["nonce"].is_null() {
                    c["nonce"] = d["nonce"].clone();
                }
                if i == 0 && !not_found.is_empty() {
                    c["not_found"] = json!(not_found);
                }
                c
            })
            .collect();
        for f in frames {
            self.send_to(session, "GUILD_MEMBERS_CHUNK", f);
        }
        self.member_requests += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn guild(n: usize) -> GuildState {
        let mut members = BTreeMap::new();
        for i in 0..n {
            let id = format!("{}", 100 + i);
            let user = json!({"id": id, "username": format!("user{i}")});
            members.insert(id, json!({"user": user}));
        }
        GuildState {
            id: "1".into(),
            name: "g".into(),
            owner: "100".into(),
            roles: vec![],
            members,
        }
    }

    #[test]
    fn guild_create_lists_members_only_for_small_guilds_with_presences() {
        const P: u64 = INTENT_GUILD_PRESENCES;
        // (members, intents, large_threshold asked, large, members listed)
        let cases = [
            (10, P, None, false, 10),
            (10, 0, None, false, 1),
            (51, P, None, true, 1),
            (51, P, Some(250), false, 51),
            (300, P, Some(1000), true, 1),
            (40, P, Some(10), false, 40),
        ];
        for (n, intents, threshold, large, listed) in cases {
            let g = guild(n);
            let mut d = json!({"intents": intents});
            if let Some(t) = threshold {
                d["large_threshold"] = json!(t);
            }
            let (l, m) = in_guild_create(&g, "100", View::from_identify(&d));
            assert_eq!((l, m.len()), (large, listed), "{n} members, {d}");
        }
    }
}
