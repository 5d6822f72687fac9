-- fib-flow schema, version 3 (PostgreSQL): the worker registry and named
-- leases. A worker row is one process start under a stable pod id; its
-- lease (`expires_at`) is renewed by heartbeats, and once it lapses the
-- row is reaped (`dead`) and its running tasks recovered. A lease row
-- names who holds one cluster-wide role (the maintenance node) until when.

CREATE TABLE fib_flow_workers (
    worker_id     VARCHAR(255) NOT NULL PRIMARY KEY,
    pod_id        VARCHAR(255) NOT NULL,
    status        VARCHAR(32)  NOT NULL,
    registered_at BIGINT       NOT NULL,
    last_seen_at  BIGINT       NOT NULL,
    expires_at    BIGINT       NOT NULL,
    superseded_at BIGINT,
    superseded_by VARCHAR(255),
    dead_at       BIGINT,
    stopped_at    BIGINT,
    meta          TEXT,
    CONSTRAINT worker_status_valid CHECK (status IN ('active', 'superseded', 'dead', 'stopped'))
);
-- Registration supersedes the active workers of a pod.
CREATE INDEX idx_fib_flow_workers_pod ON fib_flow_workers (pod_id, status);
-- The reaper looks for active rows whose lease ended.
CREATE INDEX idx_fib_flow_workers_status ON fib_flow_workers (status, expires_at);

CREATE TABLE fib_flow_leases (
    name        VARCHAR(100) NOT NULL PRIMARY KEY,
    holder      VARCHAR(255) NOT NULL,
    acquired_at BIGINT       NOT NULL,
    renewed_at  BIGINT       NOT NULL,
    expires_at  BIGINT       NOT NULL
);
