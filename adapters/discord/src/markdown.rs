//! Discord markdown <-> [`Content`] (plain text + styled spans), mentions and timestamps.
//!
//! Reading: `**b**` bold, `*i*`/`_i_` italic, `~~s~~` strike, `__u__` and `||spoiler||`
//! (markers dropped), inline code and fenced blocks, `> ` and `>>> ` quotes, `# ` headings
//! (bold), `-# ` subtext (plain), `[t](url)` links (a bare link is text as it is, up to
//! whitespace or `<`), `<@id>` `<#id>` `<@&id>` `<t:..>` `<:emoji:id>` rendered by name;
//! an escaped marker (`\*`) closes nothing. Each closing-marker search that fails is
//! remembered, so hostile input stays linear per marker kind.
//!
//! Writing: spans become markdown, plain text has Discord's metacharacters escaped (URLs are
//! left alone so they stay links; one right before a `<` is written `<url>`, as a `\<` would
//! read as part of it), `@Nick` and a leading `Nick:` become `<@id>` mentions.

use causeway_api::{Content, RemoteUserId, Span, Style};
use std::collections::HashMap;

/// Names for the ids that appear in a message.
pub trait Names {
    fn user(&self, id: &str) -> Option<String>;
    fn channel(&self, id: &str) -> Option<String>;
    fn role(&self, id: &str) -> Option<String>;
}

#[derive(Default)]
struct Out {
    text: String,
    spans: Vec<Span>,
}

impl Out {
    fn span(&mut self, start: usize, style: Style) {
        if self.text.len() > start {
            self.spans.push(Span {
                start,
                end: self.text.len(),
                style,
            });
        }
    }
}

/// Parse a Discord message's markdown.
pub fn parse(md: &str, names: &dyn Names) -> Content {
    let mut o = Out::default();
    let lines: Vec<&str> = md.split('\n').collect();
    let mut i = 0;
    let mut quote_all = false;
    let mut quote_start: Option<usize> = None;
    while i < lines.len() {
        if i > 0 {
            o.text.push('\n');
        }
        let mut line = lines[i];
        // A fenced block that starts on this line and closes on a later one.
        if let Some(after) = line.strip_prefix("```") {
            if !after.contains("```") {
                if let Some(close) = (i + 1..lines.len()).find(|&j| lines[j].contains("```")) {
                    let lang = after.trim();
                    let lang = (!lang.is_empty() && !lang.contains(' ')).then(|| lang.to_string());
                    let mut body: Vec<&str> = Vec::new();
                    if lang.is_none() && !after.is_empty() {
                        body.push(after);
                    }
                    body.extend(&lines[i + 1..close]);
                    let tail = lines[close].split("```").next().unwrap_or("");
                    if !tail.is_empty() {
                        body.push(tail);
                    }
                    let start = o.text.len();
                    o.text.push_str(&body.join("\n"));
                    o.span(start, Style::Pre(lang));
                    if let Some(after) = lines[close].split_once("```").map(|x| x.1) {
                        Inline::new(names).run(after, &mut o);
                    }
                    i = close + 1;
                    continue;
                }
            }
        }
        let quoted = if quote_all {
            true
        } else if let Some(rest) = line.strip_prefix(">>> ") {
            quote_all = true;
            line = rest;
            true
        } else if let Some(rest) = line.strip_prefix("> ") {
            line = rest;
            true
        } else if line == ">" {
            line = "";
            true
        } else {
            false
        };
        match (quoted, quote_start) {
            (true, None) => quote_start = Some(o.text.len()),
            (false, Some(s)) => {
                // The quote ended before the line break just pushed.
                let end = o.text.len().saturating_sub(1);
                close_quote(&mut o, s, end);
                quote_start = None;
            }
            _ => {}
        }
        let heading = ["### ", "## ", "# "]
            .iter()
            .find_map(|h| line.strip_prefix(h));
        if let Some(rest) = heading {
            let start = o.text.len();
            Inline::new(names).run(rest, &mut o);
            o.span(start, Style::Bold);
        } else {
            Inline::new(names).run(line.strip_prefix("-# ").unwrap_or(line), &mut o);
        }
        i += 1;
    }
    if let Some(s) = quote_start {
        let end = o.text.len();
        close_quote(&mut o, s, end);
    }
    // Spans were pushed inner first; order them outer first as the contract's readers expect.
    o.spans
        .sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    Content {
        text: o.text,
        spans: o.spans,
        ..Content::default()
    }
}

fn close_quote(o: &mut Out, start: usize, end: usize) {
    if end > start {
        o.spans.push(Span {
            start,
            end,
            style: Style::Quote,
        });
    }
}

struct Inline<'a> {
    names: &'a dyn Names,
    /// For each closing marker, the smallest offset from which a search already failed.
    failed: HashMap<&'static str, usize>,
}

/// A marker and the style it gives (None: markers dropped, no style).
type Marker = (&'static str, Option<fn() -> Style>);

const MARKERS: [Marker; 6] = [
    ("**", Some(|| Style::Bold)),
    ("__", None),
    ("~~", Some(|| Style::Strike)),
    ("||", None),
    ("*", Some(|| Style::Italic)),
    ("_", Some(|| Style::Italic)),
];

impl<'a> Inline<'a> {
    fn new(names: &'a dyn Names) -> Self {
        Self {
            names,
            failed: HashMap::new(),
        }
    }

    fn run(&mut self, s: &str, o: &mut Out) {
        let mut i = 0;
        while let Some(c) = s[i..].chars().next() {
            let rest = &s[i..];
            let used = match c {
                // A bare link is shown as it is, markup characters and all (and written so).
                'h' if is_link(rest) => {
                    let end = link_end(rest);
                    o.text.push_str(&rest[..end]);
                    Some(end)
                }
                '\\' => rest[1..]
                    .chars()
                    .next()
                    .filter(|n| n.is_ascii_punctuation())
                    .map(|n| {
                        o.text.push(n);
                        1 + n.len_utf8()
                    }),
                '`' => self.code(rest, o),
                '*' | '_' | '~' | '|' => self.emphasis(s, i, o),
                '[' => self.link(rest, o),
                '<' => self.angle(rest, o),
                _ => None,
            };
            match used {
                Some(n) => i += n,
                None => {
                    o.text.push(c);
                    i += c.len_utf8();
                }
            }
        }
    }

    fn code(&mut self, rest: &str, o: &mut Out) -> Option<usize> {
        // (the memory first: a run of backticks whose search failed is not counted again at
        // each of its backticks, which made a long run quadratic)
        let key: &'static str = if rest.starts_with("```") {
            "```"
        } else if rest.starts_with("``") {
            "``"
        } else {
            "`"
        };
        if self.failed.contains_key(key) {
            return None;
        }
        let n = rest.bytes().take_while(|&b| b == b'`').count();
        let fence = &rest[..n];
        let from = n;
        let Some(close) = rest[from..].find(fence) else {
            self.failed.insert(key, 0);
            return None;
        };
        let inner = &rest[from..from + close];
        if inner.is_empty() {
            return None;
        }
        let start = o.text.len();
        if n >= 3 {
            let (lang, body) = match inner.split_once('\n') {
                Some((l, b)) if !l.trim().is_empty() && !l.contains(' ') => {
                    (Some(l.trim().to_string()), b)
                }
                _ => (None, inner.strip_prefix('\n').unwrap_or(inner)),
            };
            o.text.push_str(body.strip_suffix('\n').unwrap_or(body));
            o.span(start, Style::Pre(lang));
        } else {
            let trimmed = match inner.strip_prefix(' ').and_then(|x| x.strip_suffix(' ')) {
                Some(t) if !t.trim().is_empty() => t,
                _ => inner,
            };
            o.text.push_str(trimmed);
            o.span(start, Style::Code);
        }
        Some(from + close + n)
    }

    fn emphasis(&mut self, s: &str, i: usize, o: &mut Out) -> Option<usize> {
        let rest = &s[i..];
        let (marker, style) = MARKERS.iter().find(|(m, _)| rest.starts_with(m))?;
        let single = marker.len() == 1;
        if *marker == "_" {
            // snake_case stays text: `_` opens only at a word start.
            let prev = s[..i].chars().next_back();
            if prev.is_some_and(|p| p.is_alphanumeric()) {
                return None;
            }
        }
        let body = &rest[marker.len()..];
        if body.starts_with(char::is_whitespace) || body.is_empty() {
            return None;
        }
        let close = self.find_close(body, marker, i + marker.len(), single)?;
        let inner = &body[..close];
        let start = o.text.len();
        self.run_nested(inner, o);
        if let Some(style) = style {
            o.span(start, style());
        }
        Some(marker.len() + close + marker.len())
    }

    /// Inner text is parsed with fresh memory (offsets there are relative to it).
    fn run_nested(&mut self, inner: &str, o: &mut Out) {
        let saved = std::mem::take(&mut self.failed);
        self.run(inner, o);
        self.failed = saved;
    }

    fn find_close(
        &mut self,
        body: &str,
        marker: &'static str,
        abs: usize,
        single: bool,
    ) -> Option<usize> {
        if self.failed.get(marker).is_some_and(|&f| f <= abs) {
            return None;
        }
        let bytes = body.as_bytes();
        let m = marker.as_bytes()[0];
        // (after an odd number of backslashes)
        let escaped = |at: usize| {
            let backslashes = bytes[..at].iter().rev().take_while(|&&b| b == b'\\');
            backslashes.count() % 2 == 1
        };
        let mut j = 0;
        while let Some(k) = body[j..].find(marker) {
            let at = j + k;
            // an escaped marker (`\*`) closes nothing, as in Discord
            if escaped(at) {
                j = at + 1;
                continue;
            }
            if single {
                let run = bytes[at..].iter().take_while(|&&b| b == m).count();
                let prev_run = at > 0 && bytes[at - 1] == m && !escaped(at - 1);
                if run > 1 || prev_run {
                    j = at + run;
                    continue;
                }
                if marker == "_" {
                    let next = body[at + 1..].chars().next();
                    if next.is_some_and(|n| n.is_alphanumeric()) {
                        j = at + 1;
                        continue;
                    }
                }
            }
            if at == 0 || body[..at].ends_with(char::is_whitespace) && single {
                j = at + marker.len();
                continue;
            }
            return Some(at);
        }
        self.failed.insert(marker, abs);
        None
    }

    fn link(&mut self, rest: &str, o: &mut Out) -> Option<usize> {
        // Bounded look-ahead keeps runs of unmatched `[` linear.
        let close = window(rest, 512).find("](")?;
        let text = &rest[1..close];
        let after = &rest[close + 2..];
        let end = window(after, 2048).find(')')?;
        let url = after[..end].trim_matches(|c| c == '<' || c == '>');
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && !url.contains(char::is_whitespace)
            && !text.is_empty()
            && !text.contains('\n');
        if !ok {
            return None;
        }
        let start = o.text.len();
        self.run_nested(text, o);
        o.span(start, Style::Link(url.to_string()));
        Some(close + 2 + end + 1)
    }

    fn angle(&mut self, rest: &str, o: &mut Out) -> Option<usize> {
        let end = window(rest, 2048).find('>')?;
        let inner = &rest[1..end];
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let start = o.text.len();
        if let Some(id) = inner.strip_prefix("@&").filter(|s| digits(s)) {
            let name = self.names.role(id).unwrap_or_else(|| "unknown-role".into());
            o.text.push('@');
            o.text.push_str(&name);
        } else if let Some(id) = inner
            .strip_prefix("@!")
            .or_else(|| inner.strip_prefix('@'))
            .filter(|s| digits(s))
        {
            let name = self.names.user(id).unwrap_or_else(|| "unknown-user".into());
            o.text.push('@');
            o.text.push_str(&name);
            o.span(start, Style::Mention(RemoteUserId::new(id)));
        } else if let Some(id) = inner.strip_prefix('#').filter(|s| digits(s)) {
            let name = self
                .names
                .channel(id)
                .unwrap_or_else(|| "unknown-channel".into());
            o.text.push('#');
            o.text.push_str(&name);
        } else if let Some(t) = inner.strip_prefix("t:") {
            let secs: i64 = t.split(':').next()?.parse().ok()?;
            o.text.push_str(&format_time(secs));
        } else if let Some(e) = inner.strip_prefix("a:").or_else(|| inner.strip_prefix(':')) {
            let (name, id) = e.split_once(':')?;
            if !digits(id) || name.is_empty() {
                return None;
            }
            o.text.push(':');
            o.text.push_str(name);
            o.text.push(':');
        } else if let Some(cmd) = inner.strip_prefix('/') {
            let (name, id) = cmd.rsplit_once(':')?;
            if !digits(id) {
                return None;
            }
            o.text.push('/');
            o.text.push_str(name);
        } else if (inner.starts_with("https://") || inner.starts_with("http://"))
            && !inner.contains(char::is_whitespace)
        {
            o.text.push_str(inner);
        } else {
            return None;
        }
        Some(end + 1)
    }
}

/// Whether `s` starts with a link Discord shows as one.
fn is_link(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

/// Where a bare link at the start of `s` ends: at whitespace or `<` (as Discord reads it).
fn link_end(s: &str) -> usize {
    s.find(|c: char| c.is_whitespace() || c == '<')
        .unwrap_or(s.len())
}

/// The first `max` bytes of `s` (cut back to a character boundary).
fn window(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `<t:secs>` as an absolute UTC time, e.g. "2026-12-01 14:05 UTC".
pub fn format_time(secs: i64) -> String {
    let c = causeway_api::time::civil(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        c.year, c.month, c.day, c.hour, c.minute
    )
}

/// Who can be mentioned in a channel: (display name, user id).
pub struct Mentionable<'a> {
    pub names: &'a [(String, String)],
}

/// Discord markdown for a content, and the user ids it mentions (for `allowed_mentions`).
pub fn render(c: &Content, who: &Mentionable<'_>) -> (String, Vec<String>) {
    let spans = causeway_api::sorted_spans(&c.spans, c.text.len());
    let mut w = Writer {
        text: &c.text,
        who,
        out: String::new(),
        mentioned: Vec::new(),
    };
    w.write(&spans, 0, c.text.len());
    if let Some((nick_end, id)) = leading_address(&c.text, who) {
        // "Nick: hello" addresses Nick. (Only where the output starts with the nick as
        // written: an `@` in it may have become a mention of someone else.)
        let nick = &c.text[..nick_end];
        let rest = w.out.get(escaped_len(nick)..).map(str::to_string);
        if let (false, false, Some(rest)) = (
            c.spans.iter().any(|s| s.start < nick_end),
            nick.contains('@'),
            rest,
        ) {
            w.out = format!("<@{id}>{rest}");
            if !w.mentioned.contains(&id) {
                w.mentioned.push(id);
            }
        }
    }
    (w.out, w.mentioned)
}

/// "Nick:" or "Nick," at the start of a message, naming a member.
fn leading_address(text: &str, who: &Mentionable<'_>) -> Option<(usize, String)> {
    who.names
        .iter()
        .filter(|(name, _)| !name.is_empty())
        .filter(|(name, _)| {
            text.get(..name.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(name))
                && matches!(text.as_bytes().get(name.len()), Some(b':' | b','))
        })
        .max_by_key(|(name, _)| name.len())
        .map(|(name, id)| (name.len(), id.clone()))
}

fn escaped_len(s: &str) -> usize {
    let mut out = String::new();
    escape_into(s, true, &mut out);
    out.len()
}

struct Writer<'a> {
    text: &'a str,
    who: &'a Mentionable<'a>,
    out: String,
    mentioned: Vec<String>,
}

impl Writer<'_> {
    fn write(&mut self, spans: &[Span], from: usize, to: usize) {
        let mut pos = from;
        for (s, inner) in causeway_api::outermost(spans) {
            self.plain(pos, s.start);
            self.styled(&s, &inner);
            pos = s.end;
        }
        self.plain(pos, to);
    }

    fn styled(&mut self, s: &Span, inner: &[Span]) {
        let raw = self.text.get(s.start..s.end).unwrap_or("");
        match &s.style {
            Style::Bold => self.wrap("**", s, inner),
            Style::Italic => self.wrap("*", s, inner),
            Style::Strike => self.wrap("~~", s, inner),
            Style::Code => {
                let longest = longest_run(raw, '`');
                let fence = "`".repeat(if longest == 1 { 2 } else { 1 });
                let pad = if raw.starts_with('`') || raw.ends_with('`') {
                    " "
                } else {
                    ""
                };
                self.out.push_str(&format!("{fence}{pad}{raw}{pad}{fence}"));
            }
            Style::Pre(lang) => {
                if !self.out.is_empty() && !self.out.ends_with('\n') {
                    self.out.push('\n');
                }
                let body = raw.replace("```", "`\u{200b}``");
                self.out.push_str(&format!(
                    "```{}\n{body}\n```",
                    lang.as_deref().unwrap_or("")
                ));
            }
            Style::Quote => {
                let mut sub = Writer {
                    text: self.text,
                    who: self.who,
                    out: String::new(),
                    mentioned: Vec::new(),
                };
                sub.write(inner, s.start, s.end);
                self.mentioned.extend(sub.mentioned);
                if !self.out.is_empty() && !self.out.ends_with('\n') {
                    self.out.push('\n');
                }
                let quoted: Vec<String> = sub.out.split('\n').map(|l| format!("> {l}")).collect();
                self.out.push_str(&quoted.join("\n"));
            }
            Style::Link(url) => {
                if raw == url {
                    self.out.push_str(url);
                } else {
                    self.out.push('[');
                    self.write(inner, s.start, s.end);
                    self.out.push_str(&format!("]({url})"));
                }
            }
            Style::Mention(id) => {
                let id = id.as_str().to_string();
                self.out.push_str(&format!("<@{id}>"));
                if !self.mentioned.contains(&id) {
                    self.mentioned.push(id);
                }
            }
        }
    }

    fn wrap(&mut self, marker: &str, s: &Span, inner: &[Span]) {
        self.out.push_str(marker);
        self.write(inner, s.start, s.end);
        self.out.push_str(marker);
    }

    /// Plain text: escaped, with `@Nick` turned into mentions.
    fn plain(&mut self, from: usize, to: usize) {
        let Some(s) = self.text.get(from..to) else {
            return;
        };
        let mut last = 0;
        for (at, _) in s.match_indices('@') {
            if at < last {
                continue;
            }
            let after = &s[at + 1..];
            let hit = self
                .who
                .names
                .iter()
                .filter(|(name, _)| {
                    !name.is_empty()
                        && after
                            .get(..name.len())
                            .is_some_and(|p| p.eq_ignore_ascii_case(name))
                        && !after[name.len()..].starts_with(|c: char| c.is_alphanumeric())
                })
                .max_by_key(|(name, _)| name.len());
            if let Some((name, id)) = hit {
                self.escaped(&s[last..at], from + last);
                self.out.push_str(&format!("<@{id}>"));
                if !self.mentioned.contains(id) {
                    self.mentioned.push(id.clone());
                }
                last = at + 1 + name.len();
            }
        }
        self.escaped(&s[last..], from + last);
    }

    fn escaped(&mut self, s: &str, abs: usize) {
        let at_line_start = abs == 0 || self.text[..abs].ends_with('\n');
        escape_into(s, at_line_start, &mut self.out);
    }
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for x in s.chars() {
        cur = if x == c { cur + 1 } else { 0 };
        best = best.max(cur);
    }
    best
}

/// Escape Discord's metacharacters; URLs are copied as they are.
fn escape_into(s: &str, mut line_start: bool, out: &mut String) {
    let mut i = 0;
    while let Some(c) = s[i..].chars().next() {
        let rest = &s[i..];
        if is_link(rest) {
            let mut end = link_end(rest);
            if rest[end..].starts_with('<') {
                // A backslash escaping that `<` would be read as part of the link: the link
                // is written `<link>` instead, up to a `>` in it (the rest is text).
                end = window(&rest[..end], 2000)
                    .find('>')
                    .unwrap_or(end.min(2000));
                end = window(rest, end).len();
                out.push('<');
                out.push_str(&rest[..end]);
                out.push('>');
            } else {
                out.push_str(&rest[..end]);
            }
            i += end;
            line_start = false;
            continue;
        }
        let special = matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '[' | ']')
            || (line_start && matches!(c, '>' | '#'))
            || (line_start && c == '-' && rest.starts_with("-#"));
        if special {
            out.push('\\');
        }
        out.push(c);
        line_start = c == '\n' || (line_start && c == ' ');
        i += c.len_utf8();
    }
}

/// Split a rendered message into parts of at most `max` characters, at a line break or a
/// space when there is one; an open code fence is closed and reopened across parts.
pub fn split(md: &str, max: usize) -> Vec<String> {
    let max = max.max(16);
    let mut parts = Vec::new();
    let mut rest = md.to_string();
    let mut reopen = false;
    while !rest.is_empty() {
        if reopen {
            rest = format!("```\n{rest}");
        }
        if rest.chars().count() <= max {
            parts.push(rest);
            break;
        }
        // Leave room to close a fence.
        let window: usize = rest
            .char_indices()
            .nth(max - 4)
            .map_or(rest.len(), |(b, _)| b);
        let head = &rest[..window];
        let cut = head
            .rfind('\n')
            .filter(|&c| c > window / 2)
            .or_else(|| head.rfind(' ').filter(|&c| c > window / 2))
            .unwrap_or(window);
        let mut part = rest[..cut].to_string();
        let tail = rest[cut..]
            .strip_prefix(['\n', ' '])
            .unwrap_or(&rest[cut..])
            .to_string();
        reopen = part.matches("```").count() % 2 == 1;
        if reopen {
            part.push_str("\n```");
        }
        parts.push(part);
        rest = tail;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    struct N;
    impl Names for N {
        fn user(&self, id: &str) -> Option<String> {
            (id == "42").then(|| "Alice".into())
        }
        fn channel(&self, id: &str) -> Option<String> {
            (id == "7").then(|| "general".into())
        }
        fn role(&self, id: &str) -> Option<String> {
            (id == "9").then(|| "mods".into())
        }
    }

    /// Any text from Discord or from XMPP: no panic, well-formed content, messages that
    /// fit Discord's limit.
    #[test]
    fn hostile_text_converts_without_panic() {
        let names = [("42".to_string(), "Alice".to_string())];
        let who = Mentionable { names: &names };
        for t in causeway_api::hostile::texts(3000) {
            let c = parse(&t, &N);
            causeway_api::hostile::check_content(&c).unwrap_or_else(|e| panic!("{t:?}: {e}"));
            let (md, _) = render(&c, &who);
            let plain = render(&Content::text(t.clone()), &who).0;
            for piece in split(&md, 50).into_iter().chain(split(&plain, 50)) {
                assert!(piece.chars().count() <= 50, "{t:?} -> {piece:?}");
            }
        }
    }

    #[test]
    fn reads_markdown() {
        use Style::*;
        type Case<'a> = (&'a str, &'a str, Vec<(&'a str, Style)>);
        let cases: Vec<Case> = vec![
            ("plain", "plain", vec![]),
            (
                "**b** *i* _j_ ~~s~~",
                "b i j s",
                vec![("b", Bold), ("i", Italic), ("j", Italic), ("s", Strike)],
            ),
            ("__u__ ||spoiler||", "u spoiler", vec![]),
            ("snake_case_name", "snake_case_name", vec![]),
            ("2 * 3 * 4", "2 * 3 * 4", vec![]),
            ("*a **b** c*", "a b c", vec![("a b c", Italic), ("b", Bold)]),
            ("`x*y*`", "x*y*", vec![("x*y*", Code)]),
            (
                "```rust\nfn a() {}\n```",
                "fn a() {}",
                vec![("fn a() {}", Pre(Some("rust".into())))],
            ),
            ("```one line```", "one line", vec![("one line", Pre(None))]),
            (
                "> quoted\n> two\nafter",
                "quoted\ntwo\nafter",
                vec![("quoted\ntwo", Quote)],
            ),
            (">>> all\nof it", "all\nof it", vec![("all\nof it", Quote)]),
            ("# Title\n-# small", "Title\nsmall", vec![("Title", Bold)]),
            (
                "[site](https://e.org/x)",
                "site",
                vec![("site", Link("https://e.org/x".into()))],
            ),
            ("[bad](javascript:x)", "[bad](javascript:x)", vec![]),
            (
                "hi <@42> and <@!42>",
                "hi @Alice and @Alice",
                vec![
                    ("@Alice", Mention(RemoteUserId::new("42"))),
                    ("@Alice", Mention(RemoteUserId::new("42"))),
                ],
            ),
            (
                "<#7> <@&9> <@1>",
                "#general @mods @unknown-user",
                vec![("@unknown-user", Mention(RemoteUserId::new("1")))],
            ),
            ("<t:1764547200:R>", "2025-12-01 00:00 UTC", vec![]),
            ("<:party:123> <a:dance:456>", ":party: :dance:", vec![]),
            ("<https://e.org>", "https://e.org", vec![]),
            ("\\*not\\* bold", "*not* bold", vec![]),
            ("**unclosed", "**unclosed", vec![]),
            ("héllo **wörld**", "héllo wörld", vec![("wörld", Bold)]),
            // an escaped marker closes nothing; a bare link is read as it is, up to `<`
            ("*5 \\* 3*", "5 * 3", vec![("5 * 3", Italic)]),
            ("_a \\_ b_", "a _ b", vec![("a _ b", Italic)]),
            (
                "see https://e.org/__init__.py *now*",
                "see https://e.org/__init__.py now",
                vec![("now", Italic)],
            ),
            (
                "https://e.org/*x*<@42>",
                "https://e.org/*x*@Alice",
                vec![("@Alice", Mention(RemoteUserId::new("42")))],
            ),
        ];
        for (md, text, want) in cases {
            let c = parse(md, &N);
            assert_eq!(c.text, text, "text of {md:?}");
            let got = c.styled_texts();
            let want: Vec<(String, Style)> =
                want.into_iter().map(|(t, s)| (t.to_string(), s)).collect();
            assert_eq!(got, want, "spans of {md:?}");
        }
    }

    #[test]
    fn hostile_input_is_fast() {
        // (a run of backticks was read in time quadratic in its length)
        let run = "`".repeat(60_000);
        let t = std::time::Instant::now();
        assert_eq!(parse(&run, &N).text, run);
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        let md = "*_~|`[<".repeat(20_000);
        let t = std::time::Instant::now();
        let c = parse(&md, &N);
        assert!(!c.text.is_empty() && c.text.len() <= md.len());
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        let unmatched = "x* _ [ < ~~ || ".repeat(20_000);
        let t = std::time::Instant::now();
        assert_eq!(parse(&unmatched, &N).text, unmatched);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
    }

    fn content(text: &str, spans: Vec<(usize, usize, Style)>) -> Content {
        Content {
            text: text.into(),
            spans: spans
                .into_iter()
                .map(|(start, end, style)| Span { start, end, style })
                .collect(),
            ..Content::default()
        }
    }

    /// A member whose nick holds another member's name after an `@` (Discord users pick
    /// their nicks): "a@x€€: hi" rendered `x` as a mention first, and cutting the nick off
    /// the output by its length panicked inside a character.
    #[test]
    fn leading_address_with_a_mention_inside_does_not_panic() {
        let names = vec![
            ("x".to_string(), "2".to_string()),
            ("a@x€€".to_string(), "1".to_string()),
            ("é".repeat(40), "3".to_string()),
        ];
        let who = Mentionable { names: &names };
        for text in [
            "a@x€€: hi",
            "a@x€€, hi",
            &format!("{}: hi", "é".repeat(40)),
            "x: hi",
        ] {
            let (md, _) = render(&Content::text(text), &who);
            assert!(md.ends_with(" hi"), "{text:?} -> {md:?}");
        }
        assert_eq!(render(&Content::text("x: hi"), &who).0, "<@2>: hi");
    }

    #[test]
    fn writes_markdown() {
        use Style::*;
        let names = vec![
            ("Alice".to_string(), "42".to_string()),
            ("Al".to_string(), "43".to_string()),
        ];
        let who = Mentionable { names: &names };
        let cases: Vec<(Content, &str, Vec<&str>)> = vec![
            (content("plain", vec![]), "plain", vec![]),
            (
                content("bold and it", vec![(0, 4, Bold), (9, 11, Italic)]),
                "**bold** and *it*",
                vec![],
            ),
            (
                content("__init__ *x* a|b ~s~ <@1>", vec![]),
                "\\_\\_init\\_\\_ \\*x\\* a\\|b \\~s\\~ \\<@1>",
                vec![],
            ),
            (
                content("# not a heading\n> nor quote", vec![]),
                "\\# not a heading\n\\> nor quote",
                vec![],
            ),
            (
                content("see https://e.org/a_b_c now", vec![]),
                "see https://e.org/a_b_c now",
                vec![],
            ),
            // a `\<` right after a link would be read as part of it
            (
                content("https://e.org/a<@1> https://e.org>b<c", vec![]),
                "<https://e.org/a>\\<@1> <https://e.org>>b\\<c",
                vec![],
            ),
            (
                content("code `x`", vec![(5, 8, Code)]),
                "code `` `x` ``",
                vec![],
            ),
            (
                content("fn a()", vec![(0, 6, Pre(Some("rust".into())))]),
                "```rust\nfn a()\n```",
                vec![],
            ),
            (
                content("q1\nq2\nreply", vec![(0, 5, Quote)]),
                "> q1\n> q2\nreply",
                vec![],
            ),
            (
                content("site", vec![(0, 4, Link("https://e.org".into()))]),
                "[site](https://e.org)",
                vec![],
            ),
            (content("hi @alice!", vec![]), "hi <@42>!", vec!["42"]),
            (content("hi @Alicex", vec![]), "hi @Alicex", vec![]),
            (content("Alice: look", vec![]), "<@42>: look", vec!["42"]),
            (
                content("Al, look at @Alice", vec![]),
                "<@43>, look at <@42>",
                vec!["42", "43"],
            ),
            (content("@everyone hi", vec![]), "@everyone hi", vec![]),
            (
                content("*b* ok", vec![(0, 3, Bold)]),
                "**\\*b\\*** ok",
                vec![],
            ),
        ];
        for (c, want, ids) in cases {
            let (md, mut got_ids) = render(&c, &who);
            assert_eq!(md, want, "markdown of {:?}", c.text);
            got_ids.sort();
            assert_eq!(got_ids, ids, "mentions of {:?}", c.text);
        }
    }

    #[test]
    fn round_trip_keeps_styles() {
        let names: Vec<(String, String)> = Vec::new();
        let who = Mentionable { names: &names };
        for md in [
            "**b** and *i* ~~s~~",
            "> quote\nplain",
            "`code` [l](https://e.org)",
        ] {
            let c = parse(md, &N);
            let (back, _) = render(&c, &who);
            assert_eq!(parse(&back, &N), c, "{md:?} -> {back:?}");
        }
    }

    #[test]
    fn splits_long_messages() {
        let words = "word ".repeat(900); // 4500 chars
        let parts = split(words.trim_end(), 2000);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.chars().count() <= 2000));
        assert_eq!(parts.join(" "), words.trim_end());

        let code = format!("```\n{}\n```", "x\n".repeat(1500));
        let parts = split(&code, 2000);
        assert!(parts.len() >= 2);
        for p in &parts {
            assert!(p.chars().count() <= 2000, "{}", p.len());
            assert_eq!(
                p.matches("```").count() % 2,
                0,
                "unbalanced fence in a part"
            );
        }

        let unbroken = "é".repeat(4100);
        let parts = split(&unbroken, 2000);
        assert_eq!(parts.concat(), unbroken);
        assert!(parts.iter().all(|p| p.chars().count() <= 2000));
    }
}
