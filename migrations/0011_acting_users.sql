-- Who did it: the Kubernetes identity admission recorded beside the WindFlow User of every
-- audit row (user_id is matched from it; the raw name stays when no User matches).
ALTER TABLE audit_logs ADD COLUMN kubernetes_username VARCHAR(255);
ALTER TABLE audit_logs ADD COLUMN kubernetes_groups TEXT[];
CREATE INDEX idx_audit_logs_kubernetes_username ON audit_logs(kubernetes_username);

-- create_deployment, with the seed's permission check done as admission and the rollout
-- controller do it (kinds::policy::deploying): the user exists and is active; a superadmin
-- may; anyone else must be a member with role owner, admin or member, and hold, through an
-- active Policy of the organization naming them or one of their Groups, a Rule whose Function
-- may create deployments.windflow.io and whose environment and element (when set) are the
-- stack's.
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
    v_element_id UUID;
    v_environment_id UUID;
    v_user users%ROWTYPE;
    v_role VARCHAR;
BEGIN
    -- Vérifier que le stack est déployable
    SELECT s.status, s.organization_id, s.element_id, e.environment_id
    INTO v_stack_status, v_organization_id, v_element_id, v_environment_id
    FROM stacks s JOIN elements e ON e.id = s.element_id WHERE s.id = p_stack_id;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'Stack % does not exist', p_stack_id USING ERRCODE = 'no_data_found';
    END IF;

    IF v_stack_status IS NULL OR v_stack_status NOT IN ('ready', 'deployed') THEN
        RAISE EXCEPTION 'Stack status % is not deployable', v_stack_status
            USING ERRCODE = 'check_violation';
    END IF;

    -- Vérifier les permissions utilisateur
    SELECT * INTO v_user FROM users u WHERE u.id = p_user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'User % does not exist', p_user_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_user.is_active IS NOT TRUE THEN
        RAISE EXCEPTION 'User % is not active', v_user.username USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_user.is_superadmin IS NOT TRUE THEN
        SELECT uo.role INTO v_role FROM user_organizations uo
        WHERE uo.user_id = p_user_id AND uo.organization_id = v_organization_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'User % is not a member of the organization', v_user.username
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF v_role NOT IN ('owner', 'admin', 'member') THEN
            RAISE EXCEPTION 'User % is a % of the organization; deploying needs owner, admin or member',
                v_user.username, v_role USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NOT EXISTS (
            SELECT 1
            FROM policies p
            JOIN rules r ON r.policy_id = p.id
            JOIN functions f ON f.id = r.function_id
            WHERE p.organization_id = v_organization_id
              AND p.is_active IS TRUE
              AND (EXISTS (SELECT 1 FROM policy_users pu WHERE pu.policy_id = p.id AND pu.user_id = p_user_id)
                   OR EXISTS (SELECT 1 FROM policy_groups pg
                              JOIN user_groups ug ON ug.group_id = pg.group_id
                              WHERE pg.policy_id = p.id AND ug.user_id = p_user_id))
              AND (r.environment_id IS NULL OR r.environment_id = v_environment_id)
              AND (r.element_id IS NULL OR r.element_id = v_element_id)
              AND EXISTS (
                  SELECT 1 FROM jsonb_array_elements(coalesce(f.permissions, '[]')) g
                  WHERE (g->'apiGroups' ? 'windflow.io' OR g->'apiGroups' ? '*')
                    AND (g->'resources' ? 'deployments' OR g->'resources' ? '*')
                    AND g->'verbs' ? 'create'))
        THEN
            RAISE EXCEPTION 'no active Policy of the organization grants User % a Function that may create deployments.windflow.io on the stack''s environment and element',
                v_user.username USING ERRCODE = 'insufficient_privilege';
        END IF;
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
        'Deployment created by user ' || v_user.username,
        'info',
        v_organization_id
    );

    RETURN v_deployment_id;
END;
$$ LANGUAGE plpgsql;

-- Audit rows find their User by username or by email in any case: both lookups indexed.
CREATE INDEX idx_users_email_lower ON users (lower(email));
