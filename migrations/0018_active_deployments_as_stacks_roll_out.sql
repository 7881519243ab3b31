-- The seed's active_deployments lists rollouts of stacks whose status is `deployed`, but a stack
-- is `deploying` while a rollout runs (a value of the seed's own check, which the operator
-- writes), and a first rollout starts on a `ready` one (create_deployment takes `ready` and
-- `deployed`): the view never listed a running rollout. It now lists the rollouts of stacks in
-- the phases that take or run one; everything else is the seed's.
DROP VIEW tenant_active_deployments;
DROP MATERIALIZED VIEW active_deployments;

CREATE MATERIALIZED VIEW active_deployments AS
SELECT
    d.id,
    d.stack_id,
    s.name as stack_name,
    d.status,
    d.started_at,
    s.element_id,
    e.name as element_name,
    e.environment_id,
    env.name as environment_name,
    env.organization_id,
    org.name as organization_name
FROM deployments d
JOIN stacks s ON d.stack_id = s.id
JOIN elements e ON s.element_id = e.id
JOIN environments env ON e.environment_id = env.id
JOIN organizations org ON env.organization_id = org.id
WHERE d.status IN ('running', 'pending', 'deploying')
AND s.status IN ('ready', 'deploying', 'deployed')
AND e.status = 'active'
AND env.is_active = true
AND org.is_active = true;

CREATE UNIQUE INDEX idx_active_deployments_id ON active_deployments(id);
CREATE INDEX idx_active_deployments_org ON active_deployments(organization_id);
CREATE INDEX idx_active_deployments_env ON active_deployments(environment_id);

CREATE VIEW tenant_active_deployments WITH (security_barrier) AS
    SELECT * FROM active_deployments WHERE organization_id = windflow_current_organization();
GRANT SELECT ON tenant_active_deployments TO windflow_tenant;
GRANT SELECT ON active_deployments, tenant_active_deployments TO windflow_runtime;
