//! XML namespaces Causeway speaks.
pub use tokio_xmpp::parsers::ns::DEFAULT_NS as STREAM;
pub const MUC: &str = "http://jabber.org/protocol/muc";
pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const SID: &str = "urn:xmpp:sid:0";
pub const OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
pub const DELAY: &str = "urn:xmpp:delay";
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const PING: &str = "urn:xmpp:ping";
pub const VERSION: &str = "jabber:iq:version";
pub const RSM: &str = "http://jabber.org/protocol/rsm";
pub const DATA: &str = "jabber:x:data";
pub const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";
pub const HINTS: &str = "urn:xmpp:hints";
