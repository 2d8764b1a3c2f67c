-- Prosody: let Causeway in on its component domain (XEP-0114).
-- component_ports defaults to 5347 on loopback; keep it off the public interface.
Component "demo.example.org"
    component_secret = "change-me"  -- the same as [[xmpp.components]] secret
