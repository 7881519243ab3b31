-- Additive only: what the operator needs to mirror Kubernetes objects. No seed column or
-- constraint is changed.

-- Every table that mirrors a kind records where the object lives and which version of it the
-- row holds (fencing: an older resourceVersion never overwrites a newer row).
DO $$
DECLARE
    mirrored text;
BEGIN
    FOREACH mirrored IN ARRAY ARRAY[
        'users', 'organizations', 'tags', 'functions', 'groups', 'policies', 'environments',
        'elements', 'container_clusters', 'container_nodes', 'vms', 'physical_hosts', 'networks',
        'volumes', 'gateways', 'domains', 'dns_records', 'dnssec_keys', 'stacks', 'applications',
        'deployments'
    ] LOOP
        EXECUTE format(
            'ALTER TABLE %I
                ADD COLUMN k8s_namespace VARCHAR(63),
                ADD COLUMN k8s_name VARCHAR(253),
                ADD COLUMN k8s_resource_version BIGINT,
                ADD COLUMN k8s_generation BIGINT', mirrored);
        -- References are resolved by (namespace, name): one row per object.
        EXECUTE format(
            'CREATE UNIQUE INDEX %I ON %I (k8s_namespace, k8s_name) NULLS NOT DISTINCT
                WHERE k8s_name IS NOT NULL', 'idx_' || mirrored || '_k8s_object', mirrored);
    END LOOP;
END;
$$;

-- The namespace an organization owns; namespaced objects there belong to it.
ALTER TABLE organizations ADD COLUMN tenant_namespace VARCHAR(63) UNIQUE;

-- Every tenant table carries the organization its rows belong to, for row-level security.
DO $$
DECLARE
    tenant text;
BEGIN
    FOREACH tenant IN ARRAY ARRAY[
        'elements', 'stacks', 'applications', 'container_clusters', 'container_nodes', 'vms',
        'physical_hosts', 'networks', 'volumes', 'gateways', 'domains', 'dns_records',
        'dnssec_keys', 'deployments', 'deployment_events', 'deployment_logs',
        'volume_applications', 'network_applications', 'volume_container_clusters', 'volume_vms',
        'network_container_nodes', 'network_vms', 'network_physical_hosts', 'network_gateways',
        'user_groups', 'rules', 'policy_users', 'policy_groups', 'group_tags', 'policy_tags',
        'element_tags', 'environment_tags'
    ] LOOP
        EXECUTE format(
            'ALTER TABLE %I ADD COLUMN organization_id UUID NOT NULL
                REFERENCES organizations(id) ON DELETE CASCADE', tenant);
        EXECUTE format('CREATE INDEX %I ON %I (organization_id)', 'idx_' || tenant || '_org', tenant);
    END LOOP;
END;
$$;
