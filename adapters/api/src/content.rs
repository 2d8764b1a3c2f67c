//! Network-neutral message content.

use serde::{Deserialize, Serialize};

/// The kind of a text message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TextKind {
    #[default]
    Normal,
    /// "/me does something"
    Emote,
    /// An automated notice (bots, system messages).
    Notice,
}

/// The body of a message, as the core and every adapter see it: plain text without markup
/// characters, with styled ranges over it. Each side writes and reads its own markup
/// (XEP-0393 on XMPP, Markdown on Discord, HTML on Matrix).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Content {
    /// Plain text; the fallback every side can show.
    pub text: String,
    pub kind: TextKind,
    /// Styled ranges of `text`, by byte offsets on character boundaries; they nest but do
    /// not cross.
    #[serde(default)]
    pub spans: Vec<Span>,
    /// Files shared with the message.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

impl Content {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// The text of one span.
    pub fn span_text(&self, span: &Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    /// Each span as (its text, its style), in order: how converters' tests read a result.
    pub fn styled_texts(&self) -> Vec<(String, Style)> {
        self.spans
            .iter()
            .map(|s| (self.span_text(s).to_string(), s.style.clone()))
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub style: Style,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Style {
    Bold,
    Italic,
    Strike,
    /// Inline code.
    Code,
    /// A preformatted block, with the language when known.
    Pre(Option<String>),
    Quote,
    Link(String),
    /// A remote user mentioned by name.
    Mention(crate::RemoteUserId),
}

/// Spans valid for a text of `len` bytes, sorted outer first (start ascending, end
/// descending): the order the writers of every side walk them in.
pub fn sorted_spans(spans: &[Span], len: usize) -> Vec<Span> {
    let mut v: Vec<Span> = spans
        .iter()
        .filter(|s| s.start < s.end && s.end <= len)
        .cloned()
        .collect();
    v.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    v
}

/// The outermost spans of a sorted list, each with the spans nested in it. A span that
/// crosses an earlier one is dropped (spans nest but do not cross).
pub fn outermost(spans: &[Span]) -> Vec<(Span, Vec<Span>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while k < spans.len() {
        let s = &spans[k];
        let end = spans[k + 1..]
            .iter()
            .position(|x| x.start >= s.end)
            .map_or(spans.len(), |p| k + 1 + p);
        if s.start >= pos {
            let inner = spans[k + 1..end]
                .iter()
                .filter(|x| x.end <= s.end)
                .cloned()
                .collect();
            out.push((s.clone(), inner));
            pos = s.end;
        }
        k = end;
    }
    out
}

/// A file shared with a message, as a URL anyone with the link can fetch (the core re-hosts
/// remote files that need tokens or expire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub url: String,
    pub name: String,
    pub content_type: Option<String>,
    pub size: Option<u64>,
}

/// How an XMPP user is shown on the remote side when a shared relay login posts for them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persona {
    pub nick: String,
    pub avatar_url: Option<String>,
    /// A stable, opaque id for the XMPP user (never the real JID unless configured).
    pub xmpp_user: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: usize, end: usize, style: Style) -> Span {
        Span { start, end, style }
    }

    #[test]
    fn spans_nest_outer_first() {
        let spans = vec![
            span(2, 4, Style::Italic),
            span(0, 6, Style::Bold),
            span(8, 9, Style::Code),
            span(5, 8, Style::Strike), // crosses the bold span
            span(3, 20, Style::Quote), // beyond the text
        ];
        let sorted = sorted_spans(&spans, 10);
        assert_eq!(
            sorted.iter().map(|s| s.start).collect::<Vec<_>>(),
            vec![0, 2, 5, 8]
        );
        let top = outermost(&sorted);
        let got: Vec<(usize, usize, usize)> =
            top.iter().map(|(s, i)| (s.start, s.end, i.len())).collect();
        assert_eq!(got, vec![(0, 6, 1), (8, 9, 0)]);
    }
}
