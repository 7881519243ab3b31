//! The chart's Argo CD health script, run by a real Lua 5.4 (`LUA`, default `lua5.4`).

use std::process::Command;

use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/windflow/argocd/health.lua");

/// A JSON value as a Lua table constructor.
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(fields) => {
            format!(
                "{{{}}}",
                fields.iter().map(|(k, v)| format!("[{k:?}] = {}", lua(v))).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// Argo CD's verdict on `obj`: (status, message).
pub fn health(obj: &Value) -> (String, String) {
    let interpreter = std::env::var("LUA").unwrap_or_else(|_| "lua5.4".into());
    let program = format!(
        "obj = {}\nlocal hs = assert(loadfile({SCRIPT:?}))()\nio.write(hs.status, \"\\t\", hs.message or \"\")",
        lua(obj)
    );
    let output = Command::new(&interpreter)
        .args(["-e", &program])
        .output()
        .unwrap_or_else(|e| panic!("{interpreter} cannot run ({e}); install lua5.4 or set LUA"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "lua: {}", String::from_utf8_lossy(&output.stderr));
    let (status, message) = stdout.split_once('\t').unwrap_or((&stdout, ""));
    (status.to_owned(), message.to_owned())
}
