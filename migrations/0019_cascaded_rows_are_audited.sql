-- A row removed by a foreign key's ON DELETE CASCADE (an organization's environments, a stack's
-- applications, an application's volume mounts...) gets a `delete` audit row of its own, in the
-- transaction that removed it: the audit trail holds every row that went, not only those the
-- operator deleted itself (those audit rows name who acted; these say `cascade`).
CREATE FUNCTION windflow_audit_cascade() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb := to_jsonb(OLD) - 'hashed_password';
    parent_gone boolean := false;
    i int := 1;
BEGIN
    -- Removed by a cascade: a row it references through a cascading key is gone. (A cascade's
    -- deletes run their triggers at the end of the outer statement, so the trigger depth does
    -- not tell.) A statement's own delete, with its parents there, is the operator's to audit.
    WHILE i < TG_NARGS AND NOT parent_gone LOOP
        EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s WHERE id = $1)', TG_ARGV[i + 1])
            INTO parent_gone USING (old_row->>TG_ARGV[i])::uuid;
        i := i + 2;
    END LOOP;
    IF parent_gone THEN
        INSERT INTO audit_logs (organization_id, actor, action, resource_type, resource_id,
                                resource_namespace, resource_name, resource_version, changes)
        VALUES ((old_row->>'organization_id')::uuid, 'cascade', 'delete', TG_ARGV[0], (old_row->>'id')::uuid,
                old_row->>'k8s_namespace', old_row->>'k8s_name', (old_row->>'k8s_resource_version')::bigint,
                jsonb_build_object('cascade', true, 'row', (
                    SELECT coalesce(jsonb_object_agg(k, jsonb_build_object('old', v, 'new', NULL)), '{}')
                    FROM jsonb_each(old_row) AS e(k, v)
                    WHERE k NOT IN ('created_at', 'updated_at', 'k8s_resource_version', 'k8s_generation')
                      AND v <> 'null'::jsonb)));
    END IF;
    RETURN NULL;
END;
$$;

-- Every table a cascade reaches, named in its audit rows as the operator names them: its
-- kind, or the table for what is part of a kind (memberships, mounts, rollout steps).
DO $$
DECLARE
    cascaded regclass;
    kind text;
    parents text;
BEGIN
    FOR cascaded IN
        SELECT DISTINCT c.conrelid::regclass FROM pg_constraint c
        WHERE c.contype = 'f' AND c.confdeltype = 'c' AND c.connamespace = current_schema()::regnamespace
          AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attname = 'id' AND NOT a.attisdropped)
          AND c.conrelid::regclass::text NOT IN ('audit_logs', 'tenant_roles', 'deletion_requests')
    LOOP
        kind := CASE cascaded::text
            WHEN 'environments' THEN 'Environment' WHEN 'elements' THEN 'Element' WHEN 'stacks' THEN 'Stack'
            WHEN 'applications' THEN 'Application' WHEN 'volumes' THEN 'Volume' WHEN 'networks' THEN 'Network'
            WHEN 'vms' THEN 'VM' WHEN 'gateways' THEN 'Gateway' WHEN 'domains' THEN 'Domain'
            WHEN 'dns_records' THEN 'DnsRecord' WHEN 'dnssec_keys' THEN 'DnssecKey'
            WHEN 'container_clusters' THEN 'ContainerCluster' WHEN 'container_nodes' THEN 'ContainerNode'
            WHEN 'physical_hosts' THEN 'PhysicalHost' WHEN 'deployments' THEN 'Deployment'
            WHEN 'groups' THEN 'Group' WHEN 'policies' THEN 'Policy'
            ELSE cascaded::text END;
        -- Its cascading keys, as (column, referenced table) arguments.
        SELECT string_agg(format('%L, %L', a.attname, c.confrelid::regclass::text), ', ') INTO parents
        FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.conrelid = cascaded AND c.contype = 'f' AND c.confdeltype = 'c';
        EXECUTE format('CREATE TRIGGER audit_cascaded_delete AFTER DELETE ON %s
                        FOR EACH ROW EXECUTE FUNCTION windflow_audit_cascade(%L, %s)', cascaded, kind, parents);
    END LOOP;
END;
$$;
REVOKE EXECUTE ON FUNCTION windflow_audit_cascade() FROM PUBLIC;
-- It runs as whoever deletes: its tables are found in this schema, whatever their search_path.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION windflow_audit_cascade() SET search_path = %I, pg_catalog, pg_temp', current_schema());
END;
$$;
