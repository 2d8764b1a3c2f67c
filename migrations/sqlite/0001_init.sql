-- Causeway's first schema (SQLite). Keep in step with migrations/postgres/0001_init.sql.
CREATE TABLE xmpp_user (
    jid TEXT PRIMARY KEY,
    registered_at BIGINT NOT NULL
);
CREATE TABLE user_login (
    network TEXT NOT NULL,
    login_id TEXT NOT NULL,
    user_jid TEXT,
    remote_name TEXT NOT NULL,
    secrets TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (network, login_id)
);
CREATE TABLE space (
    network TEXT NOT NULL,
    space_id TEXT NOT NULL,
    name TEXT NOT NULL,
    avatar TEXT,
    PRIMARY KEY (network, space_id)
);
CREATE TABLE portal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    network TEXT NOT NULL,
    room_id TEXT NOT NULL,
    receiver TEXT NOT NULL DEFAULT '',
    jid_local TEXT NOT NULL,
    kind TEXT NOT NULL,
    space_id TEXT,
    relay_login TEXT,
    xmpp_user TEXT,
    name TEXT NOT NULL,
    topic TEXT,
    avatar TEXT,
    UNIQUE (network, room_id, receiver),
    UNIQUE (network, jid_local)
);
CREATE TABLE puppet (
    network TEXT NOT NULL,
    remote_user TEXT NOT NULL,
    jid_local TEXT NOT NULL,
    display_name TEXT NOT NULL,
    avatar TEXT,
    is_bot BIGINT NOT NULL DEFAULT 0,
    synced_at BIGINT NOT NULL,
    PRIMARY KEY (network, remote_user)
);
CREATE TABLE message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    portal_id BIGINT NOT NULL REFERENCES portal (id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,
    part BIGINT NOT NULL DEFAULT 0,
    stanza_id TEXT NOT NULL,
    origin_id TEXT,
    xmpp_id TEXT,
    sender TEXT NOT NULL,
    sender_nick TEXT NOT NULL,
    from_xmpp BIGINT NOT NULL DEFAULT 0,
    body TEXT,
    reply_to TEXT,
    sent_at BIGINT NOT NULL,
    UNIQUE (portal_id, remote_id, part)
);
CREATE INDEX message_stanza ON message (portal_id, stanza_id);
CREATE INDEX message_xmpp ON message (portal_id, xmpp_id);
CREATE TABLE reaction (
    portal_id BIGINT NOT NULL REFERENCES portal (id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    emoji TEXT NOT NULL,
    remote_reaction_id TEXT,
    PRIMARY KEY (portal_id, remote_id, sender, emoji)
);
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL,
    stanza TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_domain ON outbox (domain, seq);
CREATE TABLE cursor (
    portal_id BIGINT PRIMARY KEY REFERENCES portal (id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
