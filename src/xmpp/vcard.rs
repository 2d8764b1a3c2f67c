//! Reading XMPP users' vCards (XEP-0054) from the component: the request, the photo in the
//! answer.

use super::ns;
use super::outbound::Outgoing;
use super::Attrs;
use tokio_xmpp::minidom::Element;

/// Ids of our vCard requests: their answers are routed back to the one who asked.
pub const REQUEST_PREFIX: &str = "cw-vc-";

/// `<iq type='get'><vCard xmlns='vcard-temp'/></iq>` from the component to a user.
pub fn request(from: &str, to: &str, id: &str) -> Outgoing {
    let el = Element::builder("iq", ns::STREAM)
        .at("type", "get")
        .at("from", from)
        .at("to", to)
        .at("id", id)
        .append(Element::builder("vCard", ns::VCARD).build())
        .build();
    Outgoing {
        stanza: el.into(),
        durable: false,
    }
}

/// The answer to one of our requests: its id.
pub fn answer_id(el: &Element) -> Option<&str> {
    let answer = el.name() == "iq" && matches!(el.attr("type"), Some("result" | "error"));
    el.attr("id")
        .filter(|id| answer && id.starts_with(REQUEST_PREFIX))
}

/// What a vCard answer says about the user's avatar.
#[derive(Debug, PartialEq, Eq)]
pub enum VcardAnswer {
    /// The photo's bytes and content type.
    Photo(Vec<u8>, String),
    /// No vCard, or one without a photo.
    NoPhoto,
    /// Any other error: try again later.
    Failed,
}

pub fn read_answer(el: &Element) -> VcardAnswer {
    match (el.attr("type"), photo(el)) {
        (Some("result"), Some((bytes, ctype))) => VcardAnswer::Photo(bytes, ctype),
        (Some("result"), None) => VcardAnswer::NoPhoto,
        _ if item_not_found(el) => VcardAnswer::NoPhoto,
        _ => VcardAnswer::Failed,
    }
}

/// An error answer saying there is no vCard.
fn item_not_found(el: &Element) -> bool {
    el.children()
        .filter(|c| c.name() == "error")
        .flat_map(|e| e.children())
        .any(|c| c.name() == "item-not-found")
}

/// The photo of a vCard answer: bytes and content type.
fn photo(el: &Element) -> Option<(Vec<u8>, String)> {
    let photo = el
        .get_child("vCard", ns::VCARD)?
        .get_child("PHOTO", ns::VCARD)?;
    let data: String = photo
        .get_child("BINVAL", ns::VCARD)?
        .text()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = base64_decode(&data)?;
    let ctype = photo
        .get_child("TYPE", ns::VCARD)
        .map(|t| t.text().trim().to_string())
        .filter(|t| t.starts_with("image/"))
        .unwrap_or_else(|| "image/png".into());
    (!bytes.is_empty()).then_some((bytes, ctype))
}

/// Standard base64 (RFC 4648) with or without padding; None on anything else.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::outbound::base64_encode;

    #[test]
    fn base64_round_trips() {
        for (text, b64) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_decode(b64).as_deref(), Some(text.as_bytes()));
            assert_eq!(
                base64_decode(b64.trim_end_matches('=')).as_deref(),
                Some(text.as_bytes())
            );
        }
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&bytes)), Some(bytes));
        for bad in ["Z", "Zm9v!", "Zg=a"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn photos_of_answers() {
        let el: Element = format!(
            "<iq xmlns='{}' type='result' id='cw-vc-1'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/jpeg</TYPE><BINVAL>Zm9v\n YmFy</BINVAL></PHOTO></vCard></iq>",
            ns::STREAM
        )
        .parse()
        .expect("xml");
        assert_eq!(answer_id(&el), Some("cw-vc-1"));
        assert_eq!(photo(&el), Some((b"foobar".to_vec(), "image/jpeg".into())));
        let none: Element = format!(
            "<iq xmlns='{}' type='result' id='x'><vCard xmlns='vcard-temp'/></iq>",
            ns::STREAM
        )
        .parse()
        .expect("xml");
        assert_eq!((answer_id(&none), photo(&none)), (None, None));
        let missing: Element = format!("<iq xmlns='{}' type='error' id='cw-vc-2'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", ns::STREAM)
            .parse()
            .expect("xml");
        assert!(item_not_found(&missing));
        assert_eq!(read_answer(&missing), VcardAnswer::NoPhoto);
        assert_eq!(read_answer(&none), VcardAnswer::NoPhoto);
        assert_eq!(
            read_answer(&el),
            VcardAnswer::Photo(b"foobar".to_vec(), "image/jpeg".into())
        );
    }
}
