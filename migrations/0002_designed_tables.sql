-- Tables that the seed's diagram names without giving their SQL, designed in the seed's style:
-- UUID keys, VARCHAR limits, named CHECK constraints, JSONB for free-form settings, timestamps,
-- one index per foreign key.

-- Tag - Étiquette appliquée aux utilisateurs, groupes, politiques, environnements, éléments
CREATE TABLE tags (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(63) UNIQUE NOT NULL,
    description TEXT,
    color VARCHAR(7),

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    CONSTRAINT tag_name_check CHECK (length(name) >= 1),
    CONSTRAINT tag_color_check CHECK (color ~ '^#[0-9A-Fa-f]{6}$')
);

CREATE INDEX idx_tags_name ON tags(name);

-- Function - Permission nommée (ex. stack.deploy) et ce qu'elle accorde dans Kubernetes
CREATE TABLE functions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) UNIQUE NOT NULL,
    description TEXT,
    category VARCHAR(50),

    -- Verbes et ressources Kubernetes accordés: [{apiGroups, resources, verbs}]
    permissions JSONB DEFAULT '[]',

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    CONSTRAINT function_name_check CHECK (name ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$')
);

CREATE INDEX idx_functions_name ON functions(name);
CREATE INDEX idx_functions_category ON functions(category);

-- Group - Groupe d'utilisateurs d'une organisation
CREATE TABLE groups (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) NOT NULL,
    description TEXT,
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(organization_id, name),
    CONSTRAINT group_name_check CHECK (length(name) >= 2)
);

CREATE INDEX idx_groups_org ON groups(organization_id);

CREATE TABLE user_groups (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_id UUID NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    joined_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(user_id, group_id)
);

CREATE INDEX idx_user_groups_user ON user_groups(user_id);
CREATE INDEX idx_user_groups_group ON user_groups(group_id);

-- Policy - Ensemble de règles accordées à des utilisateurs et des groupes
CREATE TABLE policies (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) NOT NULL,
    description TEXT,
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    is_active BOOLEAN DEFAULT TRUE,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(organization_id, name),
    CONSTRAINT policy_name_check CHECK (length(name) >= 2)
);

CREATE INDEX idx_policies_org ON policies(organization_id);
CREATE INDEX idx_policies_active ON policies(is_active);

-- Rule - Une fonction accordée, limitée à un environnement ou à un élément
CREATE TABLE rules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    policy_id UUID NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    environment_id UUID REFERENCES environments(id) ON DELETE CASCADE,
    element_id UUID REFERENCES elements(id) ON DELETE CASCADE,

    conditions JSONB DEFAULT '{}',

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    CONSTRAINT rules_scope_unique UNIQUE NULLS NOT DISTINCT (policy_id, function_id, environment_id, element_id)
);

CREATE INDEX idx_rules_policy ON rules(policy_id);
CREATE INDEX idx_rules_function ON rules(function_id);
CREATE INDEX idx_rules_environment ON rules(environment_id);
CREATE INDEX idx_rules_element ON rules(element_id);

CREATE TABLE policy_users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    policy_id UUID NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(policy_id, user_id)
);

CREATE INDEX idx_policy_users_policy ON policy_users(policy_id);
CREATE INDEX idx_policy_users_user ON policy_users(user_id);

CREATE TABLE policy_groups (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    policy_id UUID NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    group_id UUID NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(policy_id, group_id)
);

CREATE INDEX idx_policy_groups_policy ON policy_groups(policy_id);
CREATE INDEX idx_policy_groups_group ON policy_groups(group_id);

-- Tables d'étiquetage
CREATE TABLE user_tags (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tag_id UUID NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(user_id, tag_id)
);
CREATE INDEX idx_user_tags_user ON user_tags(user_id);
CREATE INDEX idx_user_tags_tag ON user_tags(tag_id);

CREATE TABLE group_tags (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    group_id UUID NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    tag_id UUID NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(group_id, tag_id)
);
CREATE INDEX idx_group_tags_group ON group_tags(group_id);
CREATE INDEX idx_group_tags_tag ON group_tags(tag_id);

CREATE TABLE policy_tags (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    policy_id UUID NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    tag_id UUID NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(policy_id, tag_id)
);
CREATE INDEX idx_policy_tags_policy ON policy_tags(policy_id);
CREATE INDEX idx_policy_tags_tag ON policy_tags(tag_id);

CREATE TABLE element_tags (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    element_id UUID NOT NULL REFERENCES elements(id) ON DELETE CASCADE,
    tag_id UUID NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(element_id, tag_id)
);
CREATE INDEX idx_element_tags_element ON element_tags(element_id);
CREATE INDEX idx_element_tags_tag ON element_tags(tag_id);

CREATE TABLE environment_tags (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    environment_id UUID NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    tag_id UUID NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(environment_id, tag_id)
);
CREATE INDEX idx_environment_tags_environment ON environment_tags(environment_id);
CREATE INDEX idx_environment_tags_tag ON environment_tags(tag_id);

-- PhysicalHost - Serveur physique
CREATE TABLE physical_hosts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) NOT NULL,
    element_id UUID NOT NULL REFERENCES elements(id) ON DELETE CASCADE,

    hostname VARCHAR(255),
    ip_address INET,

    cpu_cores INTEGER,
    memory_gb DECIMAL(8,2),
    disk_gb DECIMAL(10,2),

    os_type VARCHAR(20),
    os_version VARCHAR(50),

    -- Accès hors bande (BMC/IPMI) et configuration
    host_config JSONB DEFAULT '{}',

    status VARCHAR(20) DEFAULT 'provisioning',
    last_heartbeat TIMESTAMP WITH TIME ZONE,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(element_id, name),
    CONSTRAINT physical_host_os_type_check CHECK (os_type IN ('linux', 'windows', 'freebsd', 'other')),
    CONSTRAINT physical_host_status_check CHECK (status IN (
        'provisioning', 'active', 'maintenance', 'error', 'decommissioned'
    ))
);

CREATE INDEX idx_physical_hosts_element ON physical_hosts(element_id);
CREATE INDEX idx_physical_hosts_status ON physical_hosts(status);
CREATE INDEX idx_physical_hosts_ip ON physical_hosts(ip_address);

-- DNSRecord - Enregistrement d'un domaine
CREATE TABLE dns_records (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,

    name VARCHAR(255) NOT NULL,
    record_type VARCHAR(10) NOT NULL,
    value TEXT NOT NULL,
    ttl INTEGER DEFAULT 3600,
    priority INTEGER,

    status VARCHAR(20) DEFAULT 'pending',

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(domain_id, name, record_type, value),
    CONSTRAINT dns_record_type_check CHECK (record_type IN (
        'A', 'AAAA', 'CNAME', 'MX', 'TXT', 'NS', 'SRV', 'CAA', 'PTR'
    )),
    CONSTRAINT dns_record_ttl_check CHECK (ttl BETWEEN 60 AND 86400),
    CONSTRAINT dns_record_priority_check CHECK (priority BETWEEN 0 AND 65535),
    CONSTRAINT dns_record_status_check CHECK (status IN ('pending', 'active', 'error'))
);

CREATE INDEX idx_dns_records_domain ON dns_records(domain_id);
CREATE INDEX idx_dns_records_type ON dns_records(record_type);

-- DNSSECKey - Clé de signature d'un domaine (partie publique seulement)
CREATE TABLE dnssec_keys (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,

    key_type VARCHAR(3) NOT NULL,
    algorithm VARCHAR(20) NOT NULL,
    key_tag INTEGER NOT NULL,
    public_key TEXT NOT NULL,

    status VARCHAR(20) DEFAULT 'generated',
    activated_at TIMESTAMP WITH TIME ZONE,
    expires_at TIMESTAMP WITH TIME ZONE,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(domain_id, key_tag, algorithm),
    CONSTRAINT dnssec_key_type_check CHECK (key_type IN ('KSK', 'ZSK')),
    CONSTRAINT dnssec_algorithm_check CHECK (algorithm IN (
        'RSASHA256', 'RSASHA512', 'ECDSAP256SHA256', 'ECDSAP384SHA384', 'ED25519', 'ED448'
    )),
    CONSTRAINT dnssec_key_tag_check CHECK (key_tag BETWEEN 0 AND 65535),
    CONSTRAINT dnssec_key_status_check CHECK (status IN (
        'generated', 'published', 'active', 'retired', 'revoked'
    )),
    CONSTRAINT dnssec_key_validity_check CHECK (
        expires_at IS NULL OR activated_at IS NULL OR expires_at > activated_at
    )
);

CREATE INDEX idx_dnssec_keys_domain ON dnssec_keys(domain_id);
CREATE INDEX idx_dnssec_keys_status ON dnssec_keys(status);

-- Liaisons volumes et réseaux
CREATE TABLE volume_container_clusters (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    volume_id UUID NOT NULL REFERENCES volumes(id) ON DELETE CASCADE,
    cluster_id UUID NOT NULL REFERENCES container_clusters(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(volume_id, cluster_id)
);
CREATE INDEX idx_vol_cluster_volume ON volume_container_clusters(volume_id);
CREATE INDEX idx_vol_cluster_cluster ON volume_container_clusters(cluster_id);

CREATE TABLE volume_vms (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    volume_id UUID NOT NULL REFERENCES volumes(id) ON DELETE CASCADE,
    vm_id UUID NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(volume_id, vm_id)
);
CREATE INDEX idx_vol_vm_volume ON volume_vms(volume_id);
CREATE INDEX idx_vol_vm_vm ON volume_vms(vm_id);

CREATE TABLE network_container_nodes (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    network_id UUID NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    node_id UUID NOT NULL REFERENCES container_nodes(id) ON DELETE CASCADE,
    ip_address INET,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(network_id, node_id)
);
CREATE INDEX idx_net_node_network ON network_container_nodes(network_id);
CREATE INDEX idx_net_node_node ON network_container_nodes(node_id);

CREATE TABLE network_vms (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    network_id UUID NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    vm_id UUID NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    ip_address INET,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(network_id, vm_id)
);
CREATE INDEX idx_net_vm_network ON network_vms(network_id);
CREATE INDEX idx_net_vm_vm ON network_vms(vm_id);

CREATE TABLE network_physical_hosts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    network_id UUID NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    physical_host_id UUID NOT NULL REFERENCES physical_hosts(id) ON DELETE CASCADE,
    ip_address INET,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(network_id, physical_host_id)
);
CREATE INDEX idx_net_host_network ON network_physical_hosts(network_id);
CREATE INDEX idx_net_host_host ON network_physical_hosts(physical_host_id);

CREATE TABLE network_gateways (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    network_id UUID NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    gateway_id UUID NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(network_id, gateway_id)
);
CREATE INDEX idx_net_gw_network ON network_gateways(network_id);
CREATE INDEX idx_net_gw_gateway ON network_gateways(gateway_id);

-- DeploymentLog - Journal lisible d'un déploiement
CREATE TABLE deployment_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    deployment_id UUID NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    level VARCHAR(10) DEFAULT 'info',
    source VARCHAR(100),
    message TEXT NOT NULL,
    logged_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    CONSTRAINT deployment_log_level_check CHECK (level IN ('debug', 'info', 'warning', 'error'))
);

CREATE INDEX idx_deployment_logs_deployment ON deployment_logs(deployment_id);
CREATE INDEX idx_deployment_logs_logged_at ON deployment_logs(logged_at);

-- AuditLog - Piste d'audit; jamais supprimée (ni clé étrangère en cascade, ni DELETE permis)
CREATE TABLE audit_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID,
    user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    actor VARCHAR(255),

    action VARCHAR(20) NOT NULL,
    resource_type VARCHAR(50) NOT NULL,
    resource_id UUID NOT NULL,
    resource_namespace VARCHAR(253),
    resource_name VARCHAR(253),
    resource_version BIGINT,

    changes JSONB DEFAULT '{}',

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    CONSTRAINT audit_action_check CHECK (action IN ('create', 'update', 'delete'))
);

CREATE INDEX idx_audit_logs_org ON audit_logs(organization_id);
CREATE INDEX idx_audit_logs_user ON audit_logs(user_id);
CREATE INDEX idx_audit_logs_resource ON audit_logs(resource_type, resource_id);
CREATE INDEX idx_audit_logs_created_at ON audit_logs(created_at);

CREATE FUNCTION audit_logs_are_permanent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is never deleted';
END;
$$;

CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_are_permanent();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_are_permanent();
