-- Tenant SQL access keyed on the login role, not on a setting a session can change.
--
-- Each Organization gets a login role (the operator makes it, `windflow_tenant_login`) that is
-- a member of `windflow_tenant`. `tenant_roles` maps logins to organizations; only the
-- operator writes it, and a tenant reads only its own mapping. `windflow_current_organization()`
-- (which every tenant policy of 0004 calls) now reads that mapping for `current_user`: a session
-- that sets `windflow.organization_id`, resets, or switches to `windflow_tenant` itself sees
-- nothing more (a role without a mapping sees nothing at all).
--
-- Needs, for the operator's role: CREATEROLE (to make and drop the logins), not superuser.

CREATE TABLE tenant_roles (
    role_name NAME PRIMARY KEY,
    organization_id UUID NOT NULL UNIQUE REFERENCES organizations(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE OR REPLACE FUNCTION windflow_current_organization() RETURNS UUID LANGUAGE sql STABLE AS $$
    SELECT organization_id FROM tenant_roles WHERE role_name = current_user
$$;

-- Row-level security is forced on every table a tenant may read, the operator's own
-- included: the operator (the role running these migrations, which owns the tables) is
-- given every row by a policy of its own.
DO $$
DECLARE
    tenant text;
BEGIN
    FOR tenant IN
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relrowsecurity
        UNION SELECT 'tenant_roles'
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tenant);
        EXECUTE format('CREATE POLICY operator_all ON %I TO %I USING (true) WITH CHECK (true)', tenant, current_user);
    END LOOP;
END;
$$;

CREATE POLICY own_mapping ON tenant_roles FOR SELECT TO windflow_tenant USING (role_name = current_user);
GRANT SELECT ON tenant_roles TO windflow_tenant;

-- A tenant never reads a password hash: users' columns are granted one by one, but that one.
REVOKE SELECT ON users FROM windflow_tenant;
DO $$
DECLARE
    readable text;
BEGIN
    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) INTO readable
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'users' AND column_name <> 'hashed_password';
    EXECUTE format('GRANT SELECT (%s) ON users TO windflow_tenant', readable);
END;
$$;

-- The materialized views know no row-level security: a tenant reads its rows through views.
CREATE VIEW tenant_active_deployments WITH (security_barrier) AS
    SELECT * FROM active_deployments WHERE organization_id = windflow_current_organization();
CREATE VIEW tenant_organization_resources WITH (security_barrier) AS
    SELECT * FROM organization_resources WHERE organization_id = windflow_current_organization();
GRANT SELECT ON tenant_active_deployments, tenant_organization_resources TO windflow_tenant;

-- Functions are callable by anyone unless revoked: a tenant calls none of the operator's.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
GRANT EXECUTE ON FUNCTION windflow_current_organization() TO windflow_tenant;

-- The login of an organization, made if missing; its password set when `p_rotate` (or when it
-- is made). Returns the role's name.
CREATE FUNCTION windflow_tenant_login(p_organization UUID, p_password TEXT, p_rotate BOOLEAN)
RETURNS NAME LANGUAGE plpgsql AS $$
DECLARE
    v_role NAME := 'wf_tenant_' || replace(p_organization::text, '-', '');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = v_role) THEN
        EXECUTE format('CREATE ROLE %I LOGIN CONNECTION LIMIT 20 IN ROLE windflow_tenant PASSWORD %L',
                       v_role, p_password);
    ELSIF p_rotate THEN
        EXECUTE format('ALTER ROLE %I PASSWORD %L', v_role, p_password);
    END IF;
    INSERT INTO tenant_roles (role_name, organization_id) VALUES (v_role, p_organization)
        ON CONFLICT (role_name) DO NOTHING;
    RETURN v_role;
END;
$$;

-- Drops an organization's login (its mapping goes with the organization's row).
CREATE FUNCTION windflow_drop_tenant_login(p_organization UUID) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP ROLE IF EXISTS %I', 'wf_tenant_' || replace(p_organization::text, '-', ''));
    DELETE FROM tenant_roles WHERE organization_id = p_organization;
END;
$$;

REVOKE EXECUTE ON FUNCTION windflow_tenant_login(UUID, TEXT, BOOLEAN), windflow_drop_tenant_login(UUID) FROM PUBLIC;
