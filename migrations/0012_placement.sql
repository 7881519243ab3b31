-- Additive: where each placed object's Kubernetes objects run, as its status.placement says:
-- {"cluster": "<ContainerCluster>[,…]" or "(management)", "namespace": "<org>-<env>"}. NULL until
-- the operator has placed it.
ALTER TABLE environments ADD COLUMN placement JSONB;
ALTER TABLE stacks ADD COLUMN placement JSONB;
ALTER TABLE applications ADD COLUMN placement JSONB;
ALTER TABLE volumes ADD COLUMN placement JSONB;
ALTER TABLE networks ADD COLUMN placement JSONB;
ALTER TABLE vms ADD COLUMN placement JSONB;
ALTER TABLE gateways ADD COLUMN placement JSONB;
