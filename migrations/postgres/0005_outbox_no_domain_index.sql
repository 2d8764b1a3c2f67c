-- The outbox holds only what the server has not acknowledged yet (a few rows, one per group
-- commit): its rows are found by sequence number, and a full read at reconnect is cheap. The
-- (domain, seq) index was one more page written by every commit and every acknowledgement.
DROP INDEX outbox_domain;
