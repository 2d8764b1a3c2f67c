-- Only messages sent from XMPP have an XMPP id; those from the networks (most of them in a
-- bridged community) left a NULL entry in this index each: space on disk, and one more page
-- written by most group commits. Lookups (portal_id = ? AND xmpp_id = ?) imply NOT NULL, so
-- the partial index serves them.
DROP INDEX message_xmpp;
CREATE INDEX message_xmpp ON message (portal_id, xmpp_id) WHERE xmpp_id IS NOT NULL;
