//! Outgoing stanzas to text, once: the outbox keeps this text and the link writes it as it
//! is, so a stanza is serialized one time however it travels.
//!
//! It is also where text XML 1.0 cannot carry is mended, for every stanza at once: the
//! networks allow control characters (and U+FFFE / U+FFFF) that XML forbids, and minidom's
//! own writer panics on them. Each such character becomes U+FFFD.
//!
//! The text is a stanza of the component stream: an element in the stream's namespace
//! (jabber:component:accept) does not repeat it, any other namespace is declared where it
//! changes. Attributes in the XML namespace are written `xml:name`; other qualified
//! attributes get a prefix declared on their element.

use super::ns;
use tokio_xmpp::minidom::rxml::Namespace;
use tokio_xmpp::minidom::{Element, Node};

/// The stanza as the component stream's text.
pub fn render(el: &Element) -> String {
    let mut out = String::with_capacity(384);
    element(el, ns::STREAM, &mut out);
    out
}

fn element(el: &Element, parent_ns: &str, out: &mut String) {
    let own_ns = (!el.has_ns(parent_ns)).then(|| el.ns());
    open(out, el.name(), own_ns.as_deref());
    let mut prefixes = 0;
    for ((attr_ns, name), value) in el.attrs() {
        if *attr_ns == Namespace::XML {
            attr(out, &format!("xml:{}", name.as_str()), value);
        } else if attr_ns.is_none() {
            attr(out, name.as_str(), value);
        } else {
            // A namespace of its own, declared for this attribute only (rare: none of the
            // stanzas Causeway builds have one).
            attr(out, &format!("xmlns:a{prefixes}"), attr_ns.as_str());
            attr(out, &format!("a{prefixes}:{}", name.as_str()), value);
            prefixes += 1;
        }
    }
    let mut nodes = el.nodes().peekable();
    if nodes.peek().is_none() {
        return empty(out);
    }
    out.push('>');
    let here = own_ns.as_deref().unwrap_or(parent_ns);
    for node in nodes {
        match node {
            Node::Element(child) => element(child, here, out),
            Node::Text(text) => escape(text, false, out),
        }
    }
    close(out, el.name());
}

/// Writing stanza text directly (messages.rs), with the same escaping and mending:
/// `<name` and its namespace when it differs from the parent's (None: the same).
pub(crate) fn open(out: &mut String, name: &str, ns: Option<&str>) {
    out.push('<');
    out.push_str(name);
    if let Some(n) = ns {
        attr(out, "xmlns", n);
    }
}

/// ` name='value'`, after `open`.
pub(crate) fn attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("='");
    escape(value, true, out);
    out.push('\'');
}

/// Ends an element opened without content.
pub(crate) fn empty(out: &mut String) {
    out.push_str("/>");
}

/// `</name>`.
pub(crate) fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// `<name>text</name>`, in the parent's namespace.
pub(crate) fn text_element(out: &mut String, name: &str, text: &str) {
    open(out, name, None);
    out.push('>');
    escape(text, false, out);
    close(out, name);
}

/// Stanza text (as rendered, or an outbox row: several concatenated) as elements again;
/// None if it is not well-formed.
pub(crate) fn parse_stanzas(text: &str) -> Option<Vec<Element>> {
    let wrapped = format!("<w xmlns='{}'>{text}</w>", ns::STREAM);
    let w: Element = wrapped.parse().ok()?;
    Some(w.children().cloned().collect())
}

/// One stanza's text as an element again; None if it is not one.
pub(crate) fn parse_stanza(text: &str) -> Option<Element> {
    parse_stanzas(text)?.into_iter().next()
}

/// `text` escaped for character data, or for an attribute value between single quotes;
/// characters XML cannot carry become U+FFFD.
pub(crate) fn escape(text: &str, attr: bool, out: &mut String) {
    let bytes = text.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (with, len) = match bytes[i] {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'\'' if attr => ("&apos;", 1),
            // Kept as they are in text; in a value a parser would turn them into spaces.
            b'\t' if attr => ("&#x9;", 1),
            b'\n' if attr => ("&#xA;", 1),
            b'\t' | b'\n' => {
                i += 1;
                continue;
            }
            // Would reach the reader as a line feed.
            b'\r' => ("&#xD;", 1),
            0..=0x1f => ("\u{FFFD}", 1),
            // U+FFFE and U+FFFF (EF BF BE, EF BF BF in UTF-8)
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                ("\u{FFFD}", 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        // `i` and `i + len` are character boundaries: the bytes matched are whole characters.
        out.push_str(text.get(copied..i).unwrap_or_default());
        out.push_str(with);
        i += len;
        copied = i;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        parse_stanza(xml).expect("renders well-formed XML")
    }

    #[test]
    fn a_stanza_reads_back_as_the_same_element() {
        let cases = [
            "<message xmlns='jabber:component:accept' from='r@d/N' to='u@h/r' type='groupchat' id='a'><body>hi &amp; &lt;bye&gt; 'q' \"d\"</body><stanza-id xmlns='urn:xmpp:sid:0' id='s' by='r@d'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='o'/></message>",
            "<presence xmlns='jabber:component:accept' from='r@d/N' to='u@h/r'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/><status code='110'/></x></presence>",
            "<message xmlns='jabber:component:accept' to='u@h'><body xml:lang='fr'>multi\nline\ttab</body><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>x<b>y</b>z</p></body></html></message>",
            "<iq xmlns='jabber:component:accept' type='result' id='a&apos;b&quot;c' to='u@h/r'><query xmlns='jabber:iq:version'><name>Causeway</name></query></iq>",
            "<message xmlns='jabber:component:accept'><x xmlns='urn:x' a='line&#xA;feed&#x9;tab&#xD;cr'/><y xmlns=''><z/></y></message>",
            "<message xmlns='jabber:component:accept'><body>carriage&#xD;return</body><q xmlns='urn:q' xmlns:p='urn:p' p:k='v'/></message>",
        ];
        for case in cases {
            let el = parse(case);
            let text = render(&el);
            assert_eq!(parse(&text), el, "{case}\n-> {text}");
        }
    }

    /// Any text at all reads back as sent, mended where XML cannot carry it.
    #[test]
    fn hostile_text_reads_back_mended() {
        for t in causeway_api::hostile::texts(3000) {
            let mended: String = t
                .chars()
                .map(|c| match c {
                    '\t' | '\n' | '\r' => c,
                    '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
                    _ => c,
                })
                .collect();
            let mut el = Element::builder("message", ns::STREAM)
                .append(
                    Element::builder("body", ns::STREAM)
                        .append(t.as_str())
                        .build(),
                )
                .build();
            super::super::xml::set_attr(&mut el, "id", t.as_str());
            let back = parse(&render(&el));
            assert_eq!(back.attr("id"), Some(mended.as_str()), "{t:?}");
            let body = back.get_child("body", ns::STREAM).map(|b| b.text());
            assert_eq!(body.as_deref(), Some(mended.as_str()), "{t:?}");
        }
    }

    #[test]
    fn the_stream_namespace_is_not_repeated() {
        let el = parse("<message xmlns='jabber:component:accept' id='a'><body>x</body><e xmlns='urn:e'><f/></e></message>");
        assert_eq!(
            render(&el),
            "<message id='a'><body>x</body><e xmlns='urn:e'><f/></e></message>"
        );
    }

    #[test]
    fn characters_xml_cannot_carry_become_replacement_characters() {
        // (text as a network sent it, as the body reads once rendered and parsed)
        let cases = [
            ("plain", "plain"),
            ("a\u{1}b", "a\u{FFFD}b"),
            (
                "\u{0}\u{8}\u{b}\u{c}\u{e}\u{1f}",
                "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}",
            ),
            ("x\u{FFFE}y\u{FFFF}z", "x\u{FFFD}y\u{FFFD}z"),
            (
                "kept: \t \n \u{7f} \u{85} \u{FFFD} \u{FFEF} \u{10FFFF} é 🎉",
                "kept: \t \n \u{7f} \u{85} \u{FFFD} \u{FFEF} \u{10FFFF} é 🎉",
            ),
            ("\r\n", "\r\n"),
        ];
        for (sent, read) in cases {
            let el = Element::builder("message", ns::STREAM)
                .append(Element::builder("body", ns::STREAM).append(sent).build())
                .build();
            let mut with_attr = el.clone();
            super::super::xml::set_attr(&mut with_attr, "id", sent);
            let back = parse(&render(&with_attr));
            assert_eq!(
                back.get_child("body", ns::STREAM).map(|b| b.text()),
                Some(read.to_string()),
                "{sent:?}"
            );
            assert_eq!(back.attr("id"), Some(read), "{sent:?}");
        }
    }
}
