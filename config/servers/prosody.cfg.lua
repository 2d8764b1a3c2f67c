-- Prosody: let Causeway in on its component domain (XEP-0114).
-- component_ports defaults to 5347 on loopback; keep it off the public interface.

-- Recommended for any gateway: without it, Prosody holds a small stanza back until the
-- previous one is acknowledged, and a remote answer that follows a reflection within
-- ~40 ms waits for a delayed ACK (see BENCHMARKS.md). Global section.
network_settings = { nagle = false }

Component "demo.example.org"
    component_secret = "change-me"  -- the same as [[xmpp.components]] secret
