-- Additive: the rows' timestamps say when things happened.

-- updated_at moves with every change of a row, whoever writes it (the mirror's upsert, which
-- updates only for a newer resourceVersion, or anything else); created_at is left as written.
CREATE FUNCTION windflow_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT c.table_name FROM information_schema.columns c
        JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
        WHERE c.table_schema = current_schema() AND c.column_name = 'updated_at' AND tb.table_type = 'BASE TABLE'
    LOOP
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION windflow_touch_updated_at()',
            t || '_touch_updated_at', t);
    END LOOP;
END;
$$;

-- A deployment starts when its rollout does: the step that starts it writes started_at
-- (create_deployment's rows, and a pending rollout's, have none until then). The seed's
-- DEFAULT NOW() stamped the insert instead.
ALTER TABLE deployments ALTER COLUMN started_at DROP DEFAULT;
