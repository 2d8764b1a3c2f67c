-- Who may use a portal: 'open' (anyone the gateway serves), 'members' (a room not every
-- member of its community can see, opted in by an admin: only its listed members), or
-- 'closed' (its space was unlinked, it was deleted on the network, or it became private
-- without an opt-in: not joinable, not listed, its archive not served, across restarts).
ALTER TABLE portal ADD COLUMN access TEXT NOT NULL DEFAULT 'open';
