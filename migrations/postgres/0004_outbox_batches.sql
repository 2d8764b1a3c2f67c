-- An outbox row holds every stanza of one group commit (concatenated, in order), not one
-- stanza: one row to write and to delete per commit instead of one per stanza. `stanzas`
-- counts them, for the outbox depth. Rows written before hold one stanza each.
ALTER TABLE outbox ADD COLUMN stanzas BIGINT NOT NULL DEFAULT 1;
