-- The sandbox's Veza database: schema and seed data (run in veza_db as its owner).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

CREATE TABLE users (
    id serial PRIMARY KEY,
    username text NOT NULL UNIQUE,
    email text NOT NULL UNIQUE,
    role text NOT NULL DEFAULT 'user',
    password_hash text NOT NULL,
    salt text NOT NULL
);

CREATE TABLE tracks (
    id serial PRIMARY KEY,
    title text NOT NULL,
    artist text NOT NULL,
    duration_s real NOT NULL,
    stream_name text NOT NULL
);

CREATE TABLE playlists (
    id serial PRIMARY KEY,
    owner_id integer NOT NULL,
    name text NOT NULL,
    CONSTRAINT playlists_owner_fk FOREIGN KEY (owner_id) REFERENCES users (id),
    CONSTRAINT playlists_owner_name_key UNIQUE (owner_id, name)
);

-- Where the deployed variant keeps its sessions (the contract's keeps them in Redis), expiry in epoch
-- seconds as the public code stores it (B9).
CREATE TABLE refresh_tokens (
    id bigserial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id),
    session_id text NOT NULL UNIQUE,
    expires_at bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
    id bigserial PRIMARY KEY,
    conversation_id text NOT NULL,
    author text NOT NULL,
    content text NOT NULL,
    client_msg_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every seeded track has a name of its own: a suite that asks for one track's metadata and
-- streams another would show it. Only the canary has audio on the stream server.
INSERT INTO tracks (title, artist, duration_s, stream_name)
SELECT 'Track ' || g || ' ' || md5(g::text), 'Artist ' || (g % 997), 120 + (g % 240), 'track-' || g
FROM generate_series(1, 50000) AS g;

-- The canary (track 50001, with the audio's own length) is inserted by stack.py right after this file.

CREATE INDEX tracks_title_idx ON tracks (lower(title) text_pattern_ops);
ANALYZE;
