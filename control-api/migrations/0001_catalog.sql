-- The catalog. One set of migrations for SQLite and PostgreSQL: only
-- types both understand (TEXT, BIGINT), JSON kept as TEXT, times as Unix
-- milliseconds.

CREATE TABLE assets (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    require_token BIGINT NOT NULL,
    sources       TEXT NOT NULL,
    tracks        TEXT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE ladders (
    name       TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE streams (
    name            TEXT PRIMARY KEY,
    publish_key     TEXT NOT NULL,
    ladder          TEXT,
    dvr_window_secs BIGINT NOT NULL,
    record          BIGINT NOT NULL,
    require_token   BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE jobs (
    id         TEXT PRIMARY KEY,
    asset      TEXT NOT NULL,
    ladder     TEXT NOT NULL,
    state      TEXT NOT NULL,
    percent    BIGINT NOT NULL,
    error      TEXT,
    outputs    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Bumped by every catalog write, in the same transaction: nodes poll it
-- to see each other's changes.
CREATE TABLE catalog_version (
    id      BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 0);
