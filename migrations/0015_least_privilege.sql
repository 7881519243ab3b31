-- Least privilege: the operator need not run as the role that owns the schema.
--
-- * The migration role runs the migrations (`windflow migrate`): it owns every table and
--   function, and holds CREATEROLE, which on PostgreSQL 15 is enough to grant itself
--   pg_execute_server_program. It is used only while migrating.
-- * The runtime role (`windflow run`) is a login granted `windflow_runtime` (by
--   `windflow migrate --runtime-role NAME`). It owns nothing and holds no CREATEROLE: it reads
--   and writes rows, and makes, rotates and drops tenant logins only through the SECURITY
--   DEFINER functions below, which run as the migration role and do nothing else.
--
-- An installation that runs both as one role keeps working: that role owns everything.
-- Every later migration that adds a table gives `windflow_runtime` its rows (default
-- privileges grant the table; a forced row-level security table needs its policy too).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'windflow_runtime') THEN
        CREATE ROLE windflow_runtime NOLOGIN;
    END IF;
END;
$$;

DO $$
DECLARE
    schema_name text := current_schema();
    forced text;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO windflow_runtime', schema_name);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO windflow_runtime', schema_name);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO windflow_runtime', schema_name);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO windflow_runtime', schema_name);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO windflow_runtime', schema_name);
    -- Row-level security is forced on the tenant tables: the runtime role is given every row,
    -- as the owner is (0010).
    FOR forced IN
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = schema_name::regnamespace AND c.relkind = 'r' AND c.relrowsecurity
    LOOP
        EXECUTE format('CREATE POLICY runtime_all ON %I TO windflow_runtime USING (true) WITH CHECK (true)', forced);
    END LOOP;
END;
$$;

-- The audit trail is never deleted, by the runtime role either.
REVOKE DELETE ON audit_logs FROM windflow_runtime;

-- Tenant logins, made and rotated as the migration role, and the materialized views, which
-- only their owner refreshes. A fixed search_path (tables named with their schema): nothing a
-- caller puts on theirs runs with the owner's rights. Every login is bounded: a tenant cannot
-- hold a statement or an idle transaction (and its locks) for long, nor take more than its
-- share of connections.
DO $migration$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    EXECUTE format($sql$
        CREATE OR REPLACE FUNCTION %1$s.windflow_tenant_login(p_organization UUID, p_password TEXT, p_rotate BOOLEAN)
        RETURNS NAME LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        DECLARE
            v_role NAME := 'wf_tenant_' || replace(p_organization::text, '-', '');
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = v_role) THEN
                EXECUTE 'CREATE ROLE ' || quote_ident(v_role) || ' LOGIN CONNECTION LIMIT 20 '
                        'IN ROLE windflow_tenant PASSWORD ' || quote_literal(p_password);
            ELSIF p_rotate THEN
                EXECUTE 'ALTER ROLE ' || quote_ident(v_role) || ' PASSWORD ' || quote_literal(p_password);
            END IF;
            EXECUTE 'ALTER ROLE ' || quote_ident(v_role) || ' SET statement_timeout = ''30s''';
            EXECUTE 'ALTER ROLE ' || quote_ident(v_role) || ' SET idle_in_transaction_session_timeout = ''60s''';
            INSERT INTO %1$s.tenant_roles (role_name, organization_id) VALUES (v_role, p_organization)
                ON CONFLICT (role_name) DO NOTHING;
            RETURN v_role;
        END;
        $body$;

        CREATE OR REPLACE FUNCTION %1$s.windflow_drop_tenant_login(p_organization UUID) RETURNS VOID
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        BEGIN
            EXECUTE 'DROP ROLE IF EXISTS ' || quote_ident('wf_tenant_' || replace(p_organization::text, '-', ''));
            DELETE FROM %1$s.tenant_roles WHERE organization_id = p_organization;
        END;
        $body$;

        -- Named with its schema: the tenant policies call it, and the views' refresh plans them
        -- under the fixed search_path below.
        CREATE OR REPLACE FUNCTION %1$s.windflow_current_organization() RETURNS UUID LANGUAGE sql STABLE AS $body$
            SELECT organization_id FROM %1$s.tenant_roles WHERE role_name = current_user
        $body$;

        CREATE FUNCTION %1$s.windflow_refresh_views() RETURNS VOID
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        BEGIN
            REFRESH MATERIALIZED VIEW CONCURRENTLY %1$s.active_deployments;
            REFRESH MATERIALIZED VIEW CONCURRENTLY %1$s.organization_resources;
        END;
        $body$;
    $sql$, s);
END;
$migration$;

-- What the runtime role may call: these (the tenants' functions need no grant of it).
REVOKE EXECUTE ON FUNCTION windflow_tenant_login(UUID, TEXT, BOOLEAN), windflow_drop_tenant_login(UUID),
    windflow_refresh_views() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION windflow_tenant_login(UUID, TEXT, BOOLEAN), windflow_drop_tenant_login(UUID),
    windflow_refresh_views() TO windflow_runtime;

-- Logins made before this migration are bounded the same way.
DO $$
DECLARE
    login name;
BEGIN
    FOR login IN SELECT role_name FROM tenant_roles LOOP
        EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', login, '30s');
        EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', login, '60s');
    END LOOP;
END;
$$;
