-- Where each live stream can be served: a row per stream and node that
-- has it (publishing: 1 while a publisher sends there, 0 when the node
-- holds its window only), its beat bumped at every heartbeat of that node.
-- Outside the catalog proper: writing it does not bump catalog_version.
-- Readers judge freshness by seeing the beat move on their own clock;
-- beat_at (the writer's clock, Unix ms) only clears out rows that nobody
-- has beaten for an hour (a node that never came back).
-- run tells apart two processes of one node (an upgrade's old and new).

CREATE TABLE live_on_air (
    stream  TEXT NOT NULL,
    node    TEXT NOT NULL,
    run     TEXT NOT NULL,
    session TEXT NOT NULL,
    publishing BIGINT NOT NULL,
    beat    BIGINT NOT NULL,
    beat_at BIGINT NOT NULL,
    PRIMARY KEY (stream, node)
);
