//! Reading a TOML table into a typed config while collecting *every* problem with its key path:
//! unknown keys, wrong types, and numbers that are not finite. Used for `[router]` tables here
//! and for whole experiment points by the runner, so both report the same way.

use serde::de::DeserializeOwned;

/// A key path (dotted, `[i]` for list elements, relative to the table given) and what is wrong.
pub type KeyProblem = (String, String);

/// Whether a problem's message (from [`deserialize_all`]) is serde's "unknown field": the one
/// place that reads serde's wording, which has no typed form through `toml`.
pub fn is_unknown_field(message: &str) -> bool {
    message.starts_with("unknown field")
}

/// Deserialises `table` as `T`, collecting every error: after each one the offending key is
/// removed and deserialisation retried, so one pass reports all unknown and mistyped keys. The
/// value left after the removals (defaults in their place) is returned so that range checks
/// can still run on the rest; `None` only when a required key is missing or an error cannot be
/// pinned on a key. Keys are reported with `prefix` (e.g. `router`) in front.
///
/// Floats that are NaN or infinite are refused before deserialising (no dddit setting means
/// anything by them: a NaN `init_bias` would only fail at the first training step, an infinite
/// `capacity` would be taken as "no limit" by one router and as an overflow by another).
pub fn deserialize_all<T: DeserializeOwned>(
    mut table: toml::Table,
    prefix: &str,
    problems: &mut Vec<KeyProblem>,
) -> Option<T> {
    let full = |p: &str| match (prefix.is_empty(), p.is_empty()) {
        (_, true) => prefix.to_string(),
        (true, false) => p.to_string(),
        (false, false) => format!("{prefix}.{p}"),
    };
    let mut bad = Vec::new();
    non_finite(&toml::Value::Table(table.clone()), "", &mut bad);
    for path in bad {
        problems.push((full(&path), "must be a finite number (NaN and infinities are not settings)".into()));
        remove(&mut table, &path);
    }
    // Each round removes one key, so the loop ends; the bound keeps a table of thousands of
    // bad keys from costing thousands of passes over itself (and guards against a
    // deserialiser that keeps failing on a key it cannot name).
    for _ in 0..MAX_ROUNDS {
        let err = match serde_path_to_error::deserialize::<_, T>(toml::Value::Table(table.clone())) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        // toml appends the enclosing key on a second line ("in `model`"); the path says it already.
        let message = err.inner().to_string().lines().next().unwrap_or_default().trim().to_string();
        // Only "unknown field" and "missing field" messages name a key (in back-quotes); in
        // "invalid type: floating point `1.5`" the back-quoted word is the value.
        let named = message.split('`').nth(1).unwrap_or("").to_string();
        let join = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else if a == b || a.ends_with(&format!(".{b}")) {
                a.to_string()
            } else {
                format!("{a}.{b}")
            }
        };
        let (rel, removable) = if is_unknown_field(&message) {
            (join(&path, &named), true)
        } else if message.starts_with("missing field") {
            (join(&path, &named), false)
        } else if message.starts_with("unknown variant") && matches!(lookup(&table, &path), Some(toml::Value::Table(_)))
        {
            // An internally tagged enum (`[data] kind = ...`): the tag is at fault.
            (join(&path, "kind"), false)
        } else {
            (path.clone(), !path.is_empty())
        };
        problems.push((full(&rel), message));
        if !removable || !remove(&mut table, &rel) {
            return None;
        }
    }
    // Named after the table the last problem was in.
    let last = problems.last().map(|(k, _)| k.clone()).unwrap_or_default();
    let table_key = match last.rsplit_once('.') {
        Some((parent, _)) => parent.to_string(),
        None if !prefix.is_empty() => prefix.to_string(),
        None => "(file)".to_string(),
    };
    problems
        .push((table_key, format!("more than {MAX_ROUNDS} unknown or mistyped keys here; the rest are not listed")));
    None
}

/// Most keys [`deserialize_all`] reports from one table.
pub const MAX_ROUNDS: usize = 256;

/// Paths of every float in `v` that is NaN or infinite.
pub fn non_finite(v: &toml::Value, path: &str, out: &mut Vec<String>) {
    match v {
        toml::Value::Float(f) if !f.is_finite() => out.push(path.to_string()),
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                non_finite(v, &p, out);
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                non_finite(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The value at a dotted `path` (no list indices) of `table`.
pub fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut cur = table.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_table()?.get(p)?;
    }
    Some(cur)
}

/// Removes the key at `path`; a path into a list (`stages[0].steps`) removes the list's key.
fn remove(table: &mut toml::Table, path: &str) -> bool {
    let path = path.split('[').next().unwrap_or(path);
    match path.rsplit_once('.') {
        None => table.remove(path).is_some(),
        Some((parent, last)) => {
            let mut cur = table;
            for p in parent.split('.') {
                match cur.get_mut(p).and_then(|v| v.as_table_mut()) {
                    Some(t) => cur = t,
                    None => return false,
                }
            }
            cur.remove(last).is_some()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    #[allow(dead_code)]
    struct C {
        k: usize,
        tau: f64,
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    #[allow(dead_code)]
    struct Inner {
        x: u32,
    }

    #[test]
    fn every_bad_key_is_named_not_its_value() {
        let t: toml::Table =
            toml::from_str("k = 1.5\ntau = nan\nname = true\ntokn = -1\n[inner]\nx = -3\ny = 1\n").unwrap();
        let mut p = vec![];
        let c: Option<C> = deserialize_all(t, "router", &mut p);
        assert!(c.is_some());
        let mut keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["router.inner.x", "router.inner.y", "router.k", "router.name", "router.tau", "router.tokn"]);
        assert!(p.iter().any(|(k, m)| k == "router.k" && m.contains("1.5")), "{p:?}");
    }
}
