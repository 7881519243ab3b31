//! The statements the mirror runs. Each write is ONE statement (data-modifying CTEs), so it is
//! one transaction and one round trip (only a create that finds its row already there, and so
//! writes nothing, is followed by the upsert); the text depends only on the statement, the
//! table and its columns, so the driver's prepared-statement cache serves every reconcile of a
//! kind.

use std::fmt::Write as _;

use crate::FIELD_MANAGER;

use super::JoinTable;

/// Which statement writes an object's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// The row is not there yet, as far as the object's status knows: insert it, its join rows
    /// and a `create` audit row, or do nothing at all if a row with its id exists after all.
    /// Leaner than [`Write::Upsert`]: no previous row to read and diff, no join rows to remove.
    Create,
    /// The row may exist: insert or update it (fenced by resourceVersion), remove the join
    /// rows the object no longer lists, and audit what changed.
    Upsert,
}

/// The one statement that writes a row, its join rows and the audit row.
///
/// Parameters: `$1` the row (JSON), `$2` the audit metadata (JSON), `$3…` one JSON array per
/// join table, in the order of `joins`. Returns `written` (the row was new, or newer than the
/// stored one) and `audited` (something changed, so an audit row was written). A row left
/// alone (a [`Write::Create`] whose id exists, an [`Write::Upsert`] whose stored
/// resourceVersion is the same or newer) leaves its joins alone too, and writes no audit row.
///
/// `changes` is MATERIALIZED so that the diff is computed once, not once per reference.
/// The upsert's `old` is a plain read: every CTE sees the snapshot from before the statement, so it holds
/// the previous row even though `up` changes it (a `FOR UPDATE` there would skip the row the
/// same statement updates); the upsert's conflict handling takes the row lock.
pub fn write(mode: Write, table: &str, columns: &[&str], joins: &[(&JoinTable, bool)]) -> String {
    let column_list = columns.join(", ");
    let on_conflict = match mode {
        Write::Create => "DO NOTHING".to_owned(),
        Write::Upsert => {
            let updates = columns
                .iter()
                .filter(|column| **column != "id")
                .map(|column| format!("{column} = EXCLUDED.{column}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "DO UPDATE SET {updates} \
                 WHERE t.k8s_resource_version IS NULL OR t.k8s_resource_version < EXCLUDED.k8s_resource_version"
            )
        }
    };
    let mut sql = format!("WITH input AS (SELECT * FROM jsonb_populate_record(NULL::{table}, $1))");
    // A row that holds what the object says already is not written at all: no row version, no
    // row lock, no WAL, however far the resourceVersion moved (a status write moves it).
    let mut only_if_changed = "";
    if mode == Write::Upsert {
        let _ = write!(sql, ", old AS (SELECT to_jsonb(t) AS doc FROM {table} t WHERE t.id = (SELECT id FROM input))");
        // The join rows wanted come first: `unchanged` compares them.
        for (i, (join, _)) in joins.iter().enumerate() {
            let _ = write!(sql, ", {}", wanted_join_rows(i, join.table));
        }
        let _ = write!(sql, ", unchanged AS ({})", unchanged(table, columns, joins));
        only_if_changed = " WHERE NOT EXISTS (SELECT 1 FROM unchanged)";
    }
    let _ = write!(
        sql,
        ", up AS (INSERT INTO {table} AS t ({column_list}) SELECT {column_list} FROM input{only_if_changed} \
                ON CONFLICT (id) {on_conflict} RETURNING to_jsonb(t) AS doc)"
    );
    let mut join_changes = String::new();
    for (i, (join, tenant)) in joins.iter().enumerate() {
        let JoinTable { table: join_table, owner, key, values } = join;
        let mut join_columns: Vec<&str> = vec![owner];
        join_columns.extend(key.iter().chain(values.iter()));
        if *tenant {
            join_columns.push("organization_id");
        }
        let join_columns = join_columns.join(", ");
        let conflict = std::iter::once(*owner).chain(key.iter().copied()).collect::<Vec<_>>().join(", ");
        let on_conflict = if values.is_empty() {
            "DO NOTHING".to_owned()
        } else {
            let sets = values.iter().map(|v| format!("{v} = EXCLUDED.{v}")).collect::<Vec<_>>().join(", ");
            let old_values = values.iter().map(|v| format!("x.{v}")).collect::<Vec<_>>().join(", ");
            let new_values = values.iter().map(|v| format!("EXCLUDED.{v}")).collect::<Vec<_>>().join(", ");
            format!("DO UPDATE SET {sets} WHERE ROW({old_values}) IS DISTINCT FROM ROW({new_values})")
        };
        if mode == Write::Create {
            let _ = write!(sql, ", {}", wanted_join_rows(i, join_table));
        }
        // A new owner has no join rows to remove.
        let (any_removed, removed) = match mode {
            Write::Create => (String::new(), "'[]'::jsonb".to_owned()),
            Write::Upsert => {
                let same_key =
                    key.iter().map(|k| format!("w.{k} IS NOT DISTINCT FROM x.{k}")).collect::<Vec<_>>().join(" AND ");
                let _ = write!(
                    sql,
                    ", j{i}_gone AS (DELETE FROM {join_table} x WHERE x.{owner} = (SELECT id FROM input) \
                        AND EXISTS (SELECT 1 FROM up) \
                        AND NOT EXISTS (SELECT 1 FROM j{i}_want w WHERE {same_key}) \
                        RETURNING {JOIN_DOC})"
                );
                (
                    format!("EXISTS (SELECT 1 FROM j{i}_gone) OR "),
                    format!("coalesce((SELECT jsonb_agg(doc) FROM j{i}_gone), '[]')"),
                )
            }
        };
        let _ = write!(
            sql,
            ", j{i}_put AS (INSERT INTO {join_table} AS x ({join_columns}) \
                SELECT {join_columns} FROM j{i}_want WHERE EXISTS (SELECT 1 FROM up) \
                ON CONFLICT ({conflict}) {on_conflict} \
                RETURNING {JOIN_DOC})"
        );
        let _ = write!(
            join_changes,
            " || CASE WHEN {any_removed}EXISTS (SELECT 1 FROM j{i}_put) \
                THEN jsonb_build_object('{join_table}', jsonb_build_object( \
                    'removed', {removed}, \
                    'written', coalesce((SELECT jsonb_agg(doc) FROM j{i}_put), '[]'))) \
                ELSE '{{}}'::jsonb END"
        );
    }
    // The requester's change is a new row or a new generation (a spec they changed); any other
    // write records what the operator observed, so the operator made it.
    let (old, action, requested) = match mode {
        Write::Create => ("NULL::jsonb", "'create'", "true"),
        Write::Upsert => (
            "(SELECT doc FROM old)",
            "CASE WHEN EXISTS (SELECT 1 FROM old) THEN 'update' ELSE 'create' END",
            "(NOT EXISTS (SELECT 1 FROM old) \
              OR (SELECT doc->'k8s_generation' FROM old) IS DISTINCT FROM (SELECT doc->'k8s_generation' FROM up))",
        ),
    };
    let _ = write!(
        sql,
        ", changes AS MATERIALIZED (SELECT nullif({row_diff}, '{{}}') AS row_diff, \
                ('{{}}'::jsonb{join_changes}) AS join_diff, {requested} AS requested), \
         audit AS (INSERT INTO audit_logs ({AUDIT_COLUMNS}) \
            SELECT m.organization_id, CASE WHEN c.requested THEN m.user_id END, \
                   CASE WHEN c.requested THEN m.actor ELSE '{FIELD_MANAGER}' END, {action}, \
                   m.resource_type, m.resource_id, m.resource_namespace, m.resource_name, m.resource_version, \
                   CASE WHEN c.requested THEN m.kubernetes_username ELSE $2->>'operator' END, \
                   CASE WHEN c.requested THEN m.kubernetes_groups END, \
                   jsonb_build_object('row', coalesce(c.row_diff, '{{}}')) \
                   || CASE WHEN c.join_diff = '{{}}' THEN '{{}}'::jsonb ELSE jsonb_build_object('joins', c.join_diff) END \
            FROM jsonb_populate_record(NULL::audit_logs, $2) m, changes c \
            WHERE EXISTS (SELECT 1 FROM up) AND (c.row_diff IS NOT NULL OR c.join_diff <> '{{}}') \
            RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM up) AS written, EXISTS (SELECT 1 FROM audit) AS audited",
        row_diff = row_diff(old, "(SELECT doc FROM up)"),
    );
    sql
}

/// The CTE of the join rows of join table `i` the object wants: parameter `$i+3`.
fn wanted_join_rows(i: usize, join_table: &str) -> String {
    format!("j{i}_want AS (SELECT * FROM jsonb_populate_recordset(NULL::{join_table}, ${}))", i + 3)
}

/// Selects a row when the stored row and its join rows hold what `input` and the wanted join
/// rows (`j{i}_want`) say, the resourceVersion aside. A plain read: it locks nothing.
fn unchanged(table: &str, columns: &[&str], joins: &[(&JoinTable, bool)]) -> String {
    let compared: Vec<&str> =
        columns.iter().copied().filter(|column| !["id", "k8s_resource_version"].contains(column)).collect();
    let of = |alias: &str| compared.iter().map(|column| format!("{alias}.{column}")).collect::<Vec<_>>().join(", ");
    let mut same = format!(
        "SELECT 1 FROM {table} t, input i WHERE t.id = i.id AND ROW({}) IS NOT DISTINCT FROM ROW({})",
        of("t"),
        of("i")
    );
    for (i, (join, _)) in joins.iter().enumerate() {
        let JoinTable { table: join_table, owner, key, values } = join;
        let join_columns = key.iter().chain(values.iter()).copied().collect::<Vec<_>>().join(", ");
        let stored = format!("SELECT {join_columns} FROM {join_table} WHERE {owner} = i.id");
        let wanted = format!("SELECT {join_columns} FROM j{i}_want");
        let _ = write!(same, " AND NOT EXISTS ({wanted} EXCEPT {stored}) AND NOT EXISTS ({stored} EXCEPT {wanted})");
    }
    same
}

/// A join row as the audit trail shows it: its own columns, without its id and timestamps.
const JOIN_DOC: &str = "to_jsonb(x) - 'id' - 'created_at' - 'joined_at' AS doc";

/// Columns whose values never enter the audit trail: a change of one is recorded as `"changed"`.
/// The column grants hide them from tenants; a copy in `changes` would not be hidden.
pub const UNAUDITED_COLUMNS: &[&str] = &["hashed_password"];

/// The columns that differ between two rows as JSON, `{column: {old, new}}`, bookkeeping
/// left out, [`UNAUDITED_COLUMNS`] as `"changed"`. Inlined into each statement rather than
/// called as a function: the planner then plans it once with the statement, where a function
/// call runs a query of its own each time.
fn row_diff(old: &str, new: &str) -> String {
    let unaudited = UNAUDITED_COLUMNS.iter().map(|column| format!("'{column}'")).collect::<Vec<_>>().join(", ");
    format!(
        "(SELECT coalesce(jsonb_object_agg(k, CASE WHEN k IN ({unaudited}) THEN '\"changed\"'::jsonb \
                ELSE jsonb_build_object('old', d.old -> k, 'new', d.new -> k) END), '{{}}') \
          FROM (SELECT {old} AS old, {new} AS new) d, \
               jsonb_object_keys(coalesce(d.old, '{{}}') || coalesce(d.new, '{{}}')) AS k \
          WHERE k NOT IN ('created_at', 'updated_at', 'k8s_resource_version', 'k8s_generation') \
            AND (d.old -> k) IS DISTINCT FROM (d.new -> k))"
    )
}

const AUDIT_COLUMNS: &str = "organization_id, user_id, actor, action, resource_type, resource_id, \
    resource_namespace, resource_name, resource_version, kubernetes_username, kubernetes_groups, changes";

/// Deletion of a row (its dependents go as the seed's foreign keys say), its deletion record
/// and its `delete` audit row, unless the stored row is newer than the deleted object. `$1`:
/// the audit metadata.
pub fn delete(table: &str) -> String {
    format!(
        "WITH gone AS (DELETE FROM {table} t WHERE t.id = ($1->>'resource_id')::uuid \
            AND (t.k8s_resource_version IS NULL OR t.k8s_resource_version <= ($1->>'resource_version')::bigint) \
            RETURNING to_jsonb(t) AS doc), \
         recorded AS (DELETE FROM deletion_requests r WHERE r.resource_id = ($1->>'resource_id')::uuid \
            AND EXISTS (SELECT 1 FROM gone)) \
         INSERT INTO audit_logs ({AUDIT_COLUMNS}) \
         SELECT coalesce(m.organization_id, (g.doc->>'organization_id')::uuid), m.user_id, m.actor, 'delete', \
                m.resource_type, m.resource_id, \
                m.resource_namespace, m.resource_name, m.resource_version, \
                m.kubernetes_username, m.kubernetes_groups, \
                jsonb_build_object('row', {row_diff}) \
         FROM gone g, jsonb_populate_record(NULL::audit_logs, $1) m \
         RETURNING 1",
        row_diff = row_diff("g.doc", "NULL::jsonb"),
    )
}

/// One query naming which of the rows `(tables[i], $i+1)` do not exist, by index `i`.
pub fn absent(tables: &[&str]) -> String {
    tables
        .iter()
        .enumerate()
        .map(|(i, table)| format!("SELECT {i} AS i WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE id = ${})", i + 1))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

#[cfg(test)]
mod tests {
    use super::*;

    static TAGS: JoinTable = JoinTable { table: "user_tags", owner: "user_id", key: &["tag_id"], values: &[] };

    #[test]
    fn upsert_is_fenced_by_resource_version_and_numbers_join_parameters() {
        let sql = write(Write::Upsert, "users", &["id", "email"], &[(&TAGS, false)]);
        assert!(sql.contains("t.k8s_resource_version < EXCLUDED.k8s_resource_version"));
        assert!(sql.contains("jsonb_populate_recordset(NULL::user_tags, $3)"));
        assert!(sql.contains("ON CONFLICT (user_id, tag_id) DO NOTHING"));
        assert!(!sql.contains("organization_id, organization_id"));
    }

    /// The audit row's User comes dereferenced: a lookup in the statement ran on a plan made
    /// while `users` was small, a sequential scan that grew with the users (BENCHMARKS.md).
    #[test]
    fn writes_and_deletes_look_no_user_up() {
        for sql in
            [write(Write::Create, "tags", &["id"], &[]), write(Write::Upsert, "tags", &["id"], &[]), delete("tags")]
        {
            assert!(!sql.contains("users"), "{sql}");
        }
    }

    #[test]
    fn create_neither_reads_nor_removes_and_leaves_an_existing_row_alone() {
        let sql = write(Write::Create, "users", &["id", "email"], &[(&TAGS, false)]);
        assert!(sql.contains("ON CONFLICT (id) DO NOTHING"));
        assert!(!sql.contains("old AS"));
        assert!(!sql.contains("DELETE"));
        // A new row is always the requester's.
        assert!(sql.contains("true AS requested"));
        assert!(sql.contains("CASE WHEN c.requested THEN m.actor ELSE 'windflow-operator' END, 'create',"));
        assert!(sql.contains("ON CONFLICT (user_id, tag_id) DO NOTHING"));
    }

    #[test]
    fn tenant_join_rows_carry_the_organization() {
        let sql = write(Write::Upsert, "groups", &["id"], &[(&TAGS, true)]);
        assert!(sql.contains("INSERT INTO user_tags AS x (user_id, tag_id, organization_id)"));
    }

    #[test]
    fn absent_names_each_row_by_its_index() {
        let sql = absent(&["organizations", "environments"]);
        assert_eq!(
            sql,
            "SELECT 0 AS i WHERE NOT EXISTS (SELECT 1 FROM organizations WHERE id = $1) UNION ALL \
             SELECT 1 AS i WHERE NOT EXISTS (SELECT 1 FROM environments WHERE id = $2)"
        );
    }
}
