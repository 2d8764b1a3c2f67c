-- Rich messaging: retraction tombstones, the archive's order, occupants kept across restarts.
-- Keep in step with the other backend's 0002_rich.sql.
ALTER TABLE message ADD COLUMN retracted_at BIGINT;
CREATE INDEX message_archive ON message (portal_id, id);
CREATE TABLE occupant (
    portal_id BIGINT NOT NULL REFERENCES portal (id) ON DELETE CASCADE,
    session TEXT NOT NULL,
    bare TEXT NOT NULL,
    nick TEXT NOT NULL,
    PRIMARY KEY (portal_id, session)
);
ALTER TABLE reaction ADD COLUMN added_at BIGINT NOT NULL DEFAULT 0;
-- Files re-hosted by Causeway's HTTP listener.
CREATE TABLE media (
    token TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha1 TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX media_source ON media (source);
-- Spaces: nesting and subscribers (XEP-0503 over XEP-0060).
ALTER TABLE space ADD COLUMN parent TEXT;
CREATE TABLE space_subscriber (
    network TEXT NOT NULL,
    space_id TEXT NOT NULL,
    jid TEXT NOT NULL,
    PRIMARY KEY (network, space_id, jid)
);
-- The catch-up point is derived from the message table (Store::cursor): one write less
-- per stored message.
DROP TABLE cursor;
