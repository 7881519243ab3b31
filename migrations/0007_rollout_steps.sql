-- Additive: what a rollout needs to take each step exactly once.

-- A step's key, unique per deployment: recording a step again (a retry, a restart) writes
-- nothing. Rows written by create_deployment or by hand have no key and are not constrained.
ALTER TABLE deployment_events ADD COLUMN step VARCHAR(150);
CREATE UNIQUE INDEX idx_deployment_events_step ON deployment_events (deployment_id, step);

-- The Kubernetes Event of the row exists: the outbox of the operator. NULL until it is created.
ALTER TABLE deployment_events ADD COLUMN published_at TIMESTAMP WITH TIME ZONE;
CREATE INDEX idx_deployment_events_unpublished ON deployment_events (deployment_id)
    WHERE published_at IS NULL;

-- The log line of a step, keyed the same way.
ALTER TABLE deployment_logs ADD COLUMN step VARCHAR(150);
CREATE UNIQUE INDEX idx_deployment_logs_step ON deployment_logs (deployment_id, step);
