-- Row-level security: a tenant role sees only the rows of the organization set for its
-- transaction with set_config('windflow.organization_id', <uuid>, true). The operator's role
-- owns the tables and so is not subject to these policies.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'windflow_tenant') THEN
        CREATE ROLE windflow_tenant NOLOGIN;
    END IF;
END;
$$;

CREATE FUNCTION windflow_current_organization() RETURNS UUID LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('windflow.organization_id', true), '')::uuid
$$;

DO $$
DECLARE
    tenant text;
BEGIN
    FOR tenant IN
        SELECT c.table_name FROM information_schema.columns c
        JOIN information_schema.tables t USING (table_schema, table_name)
        WHERE c.table_schema = current_schema() AND c.column_name = 'organization_id'
          AND t.table_type = 'BASE TABLE'
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I FOR SELECT TO windflow_tenant
                USING (organization_id = windflow_current_organization())', tenant);
        EXECUTE format('GRANT SELECT ON %I TO windflow_tenant', tenant);
    END LOOP;
END;
$$;

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON organizations FOR SELECT TO windflow_tenant
    USING (id = windflow_current_organization());
GRANT SELECT ON organizations TO windflow_tenant;

-- Users are global; a tenant sees the members of its organization.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_members ON users FOR SELECT TO windflow_tenant
    USING (EXISTS (
        SELECT 1 FROM user_organizations uo
        WHERE uo.user_id = users.id AND uo.organization_id = windflow_current_organization()
    ));
GRANT SELECT ON users, tags, functions TO windflow_tenant;

-- The seed's create_deployment, completed: the stack must exist and be ready or deployed, the
-- user must be active and a member of the stack's organization with a role that may deploy
-- (owner, admin, member) or a superadmin.
CREATE OR REPLACE FUNCTION create_deployment(
    p_stack_id UUID,
    p_user_id UUID,
    p_config JSONB,
    p_deployment_type VARCHAR DEFAULT 'standard'
) RETURNS UUID AS $$
DECLARE
    v_deployment_id UUID;
    v_stack_status VARCHAR;
    v_organization_id UUID;
    v_may_deploy BOOLEAN;
BEGIN
    -- Vérifier que le stack est déployable
    SELECT s.status, s.organization_id INTO v_stack_status, v_organization_id
    FROM stacks s WHERE s.id = p_stack_id;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'Stack % does not exist', p_stack_id USING ERRCODE = 'no_data_found';
    END IF;

    IF v_stack_status IS NULL OR v_stack_status NOT IN ('ready', 'deployed') THEN
        RAISE EXCEPTION 'Stack status % is not deployable', v_stack_status
            USING ERRCODE = 'check_violation';
    END IF;

    -- Vérifier les permissions utilisateur
    SELECT u.is_active AND (
               u.is_superadmin OR EXISTS (
                   SELECT 1 FROM user_organizations uo
                   WHERE uo.user_id = u.id AND uo.organization_id = v_organization_id
                     AND uo.role IN ('owner', 'admin', 'member')))
    INTO v_may_deploy
    FROM users u WHERE u.id = p_user_id;

    IF v_may_deploy IS NOT TRUE THEN
        RAISE EXCEPTION 'User % may not deploy stack %', p_user_id, p_stack_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    -- Créer le déploiement
    INSERT INTO deployments (
        stack_id,
        triggered_by,
        deployment_config,
        deployment_type,
        status,
        organization_id
    ) VALUES (
        p_stack_id,
        p_user_id,
        p_config,
        p_deployment_type,
        'pending',
        v_organization_id
    ) RETURNING id INTO v_deployment_id;

    -- Logger l'événement
    INSERT INTO deployment_events (
        deployment_id,
        event_type,
        message,
        level,
        organization_id
    ) VALUES (
        v_deployment_id,
        'deployment.created',
        'Deployment created by user ' || p_user_id,
        'info',
        v_organization_id
    );

    RETURN v_deployment_id;
END;
$$ LANGUAGE plpgsql;

-- What changed between two versions of a row, for audit_logs.changes: {column: {old, new}},
-- bookkeeping columns left out.
CREATE FUNCTION windflow_row_diff(old_row JSONB, new_row JSONB) RETURNS JSONB
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(k, jsonb_build_object('old', old_row -> k, 'new', new_row -> k)), '{}')
    FROM jsonb_object_keys(coalesce(old_row, '{}') || coalesce(new_row, '{}')) AS k
    WHERE k NOT IN ('created_at', 'updated_at', 'k8s_resource_version', 'k8s_generation')
      AND (old_row -> k) IS DISTINCT FROM (new_row -> k)
$$;
