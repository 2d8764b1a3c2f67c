-- Adapters' state that is only needed for a while (Matrix transaction ids, reaction ids)
-- is forgotten after its time: NULL keeps a key for ever.
ALTER TABLE adapter_state ADD COLUMN expires_at BIGINT;
