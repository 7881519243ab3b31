-- A suspended organization's login is kept and cannot log in (NOLOGIN) until it is active
-- again. Made as the migration role, like the logins themselves; the runtime role calls it.
DO $migration$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    EXECUTE format($sql$
        CREATE FUNCTION %1$s.windflow_tenant_login_allowed(p_organization UUID, p_allowed BOOLEAN) RETURNS VOID
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        DECLARE
            v_role NAME := 'wf_tenant_' || replace(p_organization::text, '-', '');
        BEGIN
            -- Only a change is written: the catalog row stays as it is otherwise.
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = v_role AND rolcanlogin IS DISTINCT FROM p_allowed) THEN
                EXECUTE 'ALTER ROLE ' || quote_ident(v_role) || CASE WHEN p_allowed THEN ' LOGIN' ELSE ' NOLOGIN' END;
            END IF;
        END;
        $body$;
    $sql$, s);
END;
$migration$;

REVOKE EXECUTE ON FUNCTION windflow_tenant_login_allowed(UUID, BOOLEAN) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION windflow_tenant_login_allowed(UUID, BOOLEAN) TO windflow_runtime;
