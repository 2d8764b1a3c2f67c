-- Small state each network adapter keeps across restarts (applied transactions, rooms it
-- opened, puppets it registered), by key.
CREATE TABLE adapter_state (
    network TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (network, key)
);
