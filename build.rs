//! `sqlx::migrate!` embeds `migrations/` at compile time; without this, a new or changed
//! migration would not rebuild the binary that carries it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
