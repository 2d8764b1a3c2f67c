-- How many of an outbox row's stanzas (one group commit) the server acknowledged before
-- the row was complete: a replay after a crash skips them (at most the link's window of
-- stanzas is then delivered twice, not a whole commit).
ALTER TABLE outbox ADD COLUMN acked BIGINT NOT NULL DEFAULT 0;
