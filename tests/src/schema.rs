//! The JSON both binaries write, checked against the tables of the JSON reference in
//! docs/handhelds.md ("machine-readable output"), parsed from that page itself, so the
//! documentation cannot drift from the binaries.

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Output};

/// Object name (`progress`, `result install`, `result list-games games`, ...) -> its
/// documented fields and their types.
pub type Schema = BTreeMap<String, Vec<(String, String)>>;

/// The schema tables of docs/handhelds.md: object name -> [(field, type)].
pub fn schema() -> Schema {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/handhelds.md"))
            .expect("docs/handhelds.md");
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        if let Some(name) = line
            .strip_prefix("<!-- schema: ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            current = Some(name.to_string());
            out.insert(name.to_string(), Vec::new());
            continue;
        }
        let Some(name) = &current else { continue };
        if line.starts_with("| field") || line.starts_with("|---") {
            continue;
        }
        if !line.starts_with('|') {
            if !out[name].is_empty() {
                current = None;
            }
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let field = cells[1].trim_matches('`').to_string();
        out.get_mut(name)
            .unwrap()
            .push((field, cells[2].to_string()));
    }
    assert!(
        out.len() >= 10,
        "docs/handhelds.md schema tables not found: {out:?}"
    );
    out
}

/// Checks `v` against table `name`: exactly the documented fields, each of its type.
pub fn check_obj(schema: &Schema, name: &str, v: &Value) {
    let table = schema
        .get(name)
        .unwrap_or_else(|| panic!("no docs/handhelds.md table for {name:?}: {v}"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let want: Vec<&str> = table.iter().map(|(f, _)| f.as_str()).collect();
    let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut sorted_want = want.clone();
    sorted_want.sort();
    got.sort();
    assert_eq!(got, sorted_want, "fields of {name}: {v}");
    for (field, ty) in table {
        let x = &obj[field];
        let fits = match ty.as_str() {
            "integer" => x.is_u64(),
            "string" => x.is_string(),
            "boolean" => x.is_boolean(),
            "integer or null" => x.is_u64() || x.is_null(),
            "string or null" => x.is_string() || x.is_null(),
            "array of strings" => x.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "array of integers" => x.as_array().is_some_and(|a| a.iter().all(Value::is_u64)),
            "array of objects" => {
                let sub = format!("{name} {field}");
                x.as_array().is_some_and(|a| {
                    a.iter().for_each(|e| check_obj(schema, &sub, e));
                    true
                })
            }
            other => panic!("docs/handhelds.md table {name}: unknown type {other:?}"),
        };
        assert!(fits, "{name}.{field} should be {ty}: {v}");
    }
    assert_eq!(obj.get("v").and_then(Value::as_u64).unwrap_or(1), 1, "{v}");
}

/// Checks one JSON object a binary wrote, choosing its table by `type` and `op`.
pub fn check(schema: &Schema, v: &Value) {
    let kind = v["type"].as_str().unwrap_or_else(|| panic!("no type: {v}"));
    let name = if kind == "result" {
        match v["op"].as_str().unwrap() {
            "build-packs" | "generate-manifests" => "result build".to_string(),
            op => format!("result {op}"),
        }
    } else {
        kind.to_string()
    };
    check_obj(schema, &name, v);
}

/// The JSON lines of a stream, each checked; panics on a line that is not JSON.
pub fn lines(schema: &Schema, text: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(text)
        .lines()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
            check(schema, &v);
            v
        })
        .collect()
}

/// The one JSON object on standard output, checked.
pub fn stdout_obj(schema: &Schema, out: &Output) -> Value {
    let v = lines(schema, &out.stdout);
    assert_eq!(
        v.len(),
        1,
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    v.into_iter().next().unwrap()
}

/// Runs a command with `--progress json --json`: returns the result (or error) object of
/// stdout and the stderr objects, all checked; the last stderr object is the same result.
pub fn run_both(schema: &Schema, mut cmd: Command) -> (Output, Value, Vec<Value>) {
    let out = cmd.args(["--progress", "json", "--json"]).output().unwrap();
    let result = stdout_obj(schema, &out);
    let stream = lines(schema, &out.stderr);
    assert_eq!(stream.last(), Some(&result), "stderr ends with the result");
    (out, result, stream)
}
