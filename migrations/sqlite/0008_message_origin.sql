-- A client that sends a message again with the same origin-id (XEP-0359: after a
-- reconnect) gets it reflected again, not posted twice: looked up by (portal, origin-id).
CREATE INDEX message_origin ON message (portal_id, origin_id) WHERE origin_id IS NOT NULL;
