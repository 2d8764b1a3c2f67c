-- An XMPP user's message about to be sent to a network, by its origin-id (XEP-0359),
-- written before the send: if Causeway stops before the message's own row is stored, the
-- client's re-send (same origin-id) is answered, not posted a second time.
CREATE TABLE intent (
    portal_id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    origin_id TEXT NOT NULL,
    txn TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (portal_id, sender, origin_id)
);
