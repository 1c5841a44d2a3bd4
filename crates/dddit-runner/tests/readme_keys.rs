//! experiments/README.md documents every key an experiment can set: each registered router and
//! its keys, and every field of the training and evaluation settings. This test fails when a
//! key is added without documentation.

use dddit_eval::eval::EvalConfig;
use dddit_train::TrainConfig;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../experiments/README.md")).unwrap()
}

#[test]
fn every_router_and_router_key_is_documented() {
    let text = readme();
    for e in dddit_routers::routers() {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| `{}`", e.name)))
            .unwrap_or_else(|| panic!("router `{}` has no row in experiments/README.md", e.name));
        for k in (e.keys)() {
            assert!(row.contains(&format!("`{}`", k.key)), "router `{}`: key `{}` undocumented", e.name, k.key);
        }
    }
}

/// Every leaf key of a settings table, as the README writes it: `` `steps` `` at the top of a
/// section, `` `[train.loss] flops` `` in a sub-table. Lists of tables (`stages`) are checked
/// separately.
fn keys(value: &toml::Value, root: &str, section: Option<&str>, out: &mut Vec<String>) {
    if let toml::Value::Table(t) = value {
        for (k, v) in t {
            match (v, section) {
                (toml::Value::Table(_), None) => keys(v, root, Some(&format!("{root}.{k}")), out),
                (toml::Value::Table(_), Some(s)) => keys(v, root, Some(&format!("{s}.{k}")), out),
                (_, _) if k == "stages" => {}
                (_, None) => out.push(format!("`{k}`")),
                (_, Some(s)) => out.push(format!("`[{s}] {k}`")),
            }
        }
    }
}

#[test]
fn every_train_and_eval_key_is_documented() {
    let text = readme();
    let section = |name: &str| -> String {
        let start = text.find(&format!("### `[{name}]`")).unwrap_or_else(|| panic!("no [{name}] section"));
        let rest = &text[start + 4..];
        rest[..rest.find("\n### ").unwrap_or(rest.len())].to_string()
    };
    for (name, value) in [
        ("train", toml::Value::try_from(TrainConfig::default()).unwrap()),
        ("eval", toml::Value::try_from(EvalConfig::default()).unwrap()),
    ] {
        let body = section(name);
        let mut found = Vec::new();
        keys(&value, name, None, &mut found);
        assert!(found.len() > 8, "{found:?}");
        for k in found {
            assert!(body.contains(&format!("| {k}")), "[{name}]: `{k}` undocumented in experiments/README.md");
        }
    }
    for k in ["stages]] steps", "stages]] train", "stages]] expert", "stats_cache"] {
        assert!(text.contains(k), "{k} undocumented");
    }
}
