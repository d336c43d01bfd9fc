-- The comment intents of a pair are looked up by their parent link on every look at the pair
-- (appliance.sync.store.comment_markers), and deleting a link cascades to them: without an
-- index each of those scans every intent of the tenant, which grows with every item and comment.
CREATE INDEX intents_parent_link ON intents (parent_link_id);
