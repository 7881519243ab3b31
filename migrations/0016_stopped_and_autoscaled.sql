-- Additive: an application asked to stop (its workloads kept with no pod), and its autoscaling
-- ({"minReplicas", "maxReplicas", "targetCPUUtilization", "targetMemoryUtilization"}, NULL when
-- it has none), so that both are queried and audited like the rest of its spec.
ALTER TABLE applications ADD COLUMN stopped BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE applications ADD COLUMN autoscaling JSONB;
