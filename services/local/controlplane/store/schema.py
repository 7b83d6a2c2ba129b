"""The tables of ``workspace.db`` and the statements that bring an older file up to them.

``Store._migrate`` (:mod:`.db`) runs them in one transaction when it opens the file
(``PRAGMA user_version`` is the schema version).
"""

from __future__ import annotations

SCHEMA_VERSION = 9

SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    path TEXT NOT NULL,
    original_path TEXT,
    description TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    type TEXT NOT NULL DEFAULT 'custom_model',
    archived INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY,
    cluster TEXT NOT NULL REFERENCES clusters(name),
    auth_mode TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '{}',
    traffic TEXT NOT NULL DEFAULT '{}',
    mirror_traffic TEXT NOT NULL DEFAULT '{}',
    control TEXT,
    primary_key TEXT NOT NULL,
    secondary_key TEXT NOT NULL,
    token_secret TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    local INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deployments (
    endpoint TEXT NOT NULL REFERENCES endpoints(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version INTEGER NOT NULL,
    code_dir TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint, name)
);
CREATE TABLE IF NOT EXISTS changes (
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    revision INTEGER NOT NULL,
    actor TEXT NOT NULL,
    at REAL NOT NULL,
    changed TEXT NOT NULL,
    action TEXT NOT NULL DEFAULT 'update',
    PRIMARY KEY (kind, target, revision)
);
CREATE INDEX IF NOT EXISTS changes_by_revision ON changes(revision);
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT,
    started_at REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS environments (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    spec TEXT NOT NULL,
    key TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS deployment_envs (
    endpoint TEXT NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    python TEXT NOT NULL,
    PRIMARY KEY (endpoint, name)
);
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    state TEXT NOT NULL,
    record TEXT NOT NULL,
    revision INTEGER NOT NULL,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rollouts_by_endpoint ON rollouts(endpoint, started_at);
"""
#: schema 8 -> 9: progressive rollouts (issue 14; ``rollouts`` is in SCHEMA, created by the
#: migration as it is on a new store)
#: schema 6 -> 7: endpoints made with az ml's --local (their owner's requests need no key)
TO_7 = ("ALTER TABLE endpoints ADD COLUMN local INTEGER NOT NULL DEFAULT 0",)
#: schema 7 -> 8: archived model versions (az ml's model archive / restore)
TO_8 = ("ALTER TABLE models ADD COLUMN archived INTEGER NOT NULL DEFAULT 0",)
#: schema 4 -> 5: what each change did (the audit history: create, update, delete, ...);
#: the index on revision (in SCHEMA) bounds the whole table cheaply
TO_5 = ("ALTER TABLE changes ADD COLUMN action TEXT NOT NULL DEFAULT 'update'",)
#: schema 3 -> 4: a model's type (custom_model, mlflow_model)
TO_4 = ("ALTER TABLE models ADD COLUMN type TEXT NOT NULL DEFAULT 'custom_model'",)

#: schema 2 -> 3: environments (registered ones, and the built one each deployment runs in);
#: both tables are in SCHEMA, created by the migration as they are on a new store

#: schema 1 -> 2: revisions on endpoints and deployments (the changes table is in SCHEMA)
TO_2 = (
    "ALTER TABLE endpoints ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE deployments ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",
)
