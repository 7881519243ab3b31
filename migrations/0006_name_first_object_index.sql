-- References are looked up by `k8s_name = ANY($n)` and a namespace. With the namespace first in
-- the index, PostgreSQL could only use the name as a filter when its statistics lagged behind a
-- growing table, and read every row of the namespace (seen: 2,000 rows read for 2 users). With
-- the name first, the lookup is an index search whatever the statistics say. Same uniqueness.
DO $$
DECLARE
    mirrored text;
BEGIN
    -- Every table that 0003 gave the lookup index; the query is read before the loop changes
    -- the indexes.
    FOR mirrored IN
        SELECT tablename FROM pg_indexes
        WHERE schemaname = current_schema() AND indexname = 'idx_' || tablename || '_k8s_object'
    LOOP
        EXECUTE format('DROP INDEX %I', 'idx_' || mirrored || '_k8s_object');
        EXECUTE format(
            'CREATE UNIQUE INDEX %I ON %I (k8s_name, k8s_namespace) NULLS NOT DISTINCT
                WHERE k8s_name IS NOT NULL', 'idx_' || mirrored || '_k8s_object', mirrored);
    END LOOP;
END;
$$;
