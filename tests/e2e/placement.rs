//! Where things run, on two real control planes: a stack placed on an existing cluster given by
//! a tenant's kubeconfig, moved to another cluster, and another tenant refused its cluster.
//! (The sample's Cluster API path runs in `platform.rs`.)
