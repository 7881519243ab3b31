-- windflow_row_diff as PL/pgSQL: a SQL function with an aggregate is not inlined, so PostgreSQL
-- planned its body again on every call; PL/pgSQL keeps the plan for the session. Same result.
CREATE OR REPLACE FUNCTION windflow_row_diff(old_row JSONB, new_row JSONB) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_object_agg(k, jsonb_build_object('old', old_row -> k, 'new', new_row -> k)), '{}')
        FROM jsonb_object_keys(coalesce(old_row, '{}') || coalesce(new_row, '{}')) AS k
        WHERE k NOT IN ('created_at', 'updated_at', 'k8s_resource_version', 'k8s_generation')
          AND (old_row -> k) IS DISTINCT FROM (new_row -> k)
    );
END
$$;
