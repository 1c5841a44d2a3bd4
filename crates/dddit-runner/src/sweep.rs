//! `[sweep]`: axes over key paths, combined as a grid product, with zipped groups that advance
//! together, expanded into named points.

use crate::error::{Location, Problem};
use crate::source::Source;

/// One axis of the grid: one key path (a plain `[sweep]` entry) or several advancing together
/// (a `[[sweep.zip]]` group).
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Key paths set by this axis (`router.kind`, `train.loss.flops_target`, `router`).
    pub keys: Vec<String>,
    /// Where each key's list was written.
    pub locations: Vec<Location>,
    /// `values[i][j]`: the value of `keys[j]` at position `i` of the axis.
    pub values: Vec<Vec<toml::Value>>,
}

impl Axis {
    /// Positions on this axis.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the axis has no positions.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// One combination of axis positions: the settings it applies over the base config.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// Key path.
    pub key: String,
    /// The value it gets.
    pub value: toml::Value,
    /// Where the sweep wrote it.
    pub location: Location,
}

/// Keys a sweep may not set (seeds are their own axis: top-level `seeds`).
const RESERVED: &[&str] = &["train.seed", "eval.sample.seed"];
/// Sections a sweep key may start with.
const SECTIONS: &[&str] = &["device", "precision", "model", "router", "data", "train", "eval"];

/// Reads the axes of `source`'s `[sweep]` table, reporting every malformed entry.
pub fn axes(source: &Source, problems: &mut Vec<Problem>) -> Vec<Axis> {
    let Some(sweep) = source.table.get("sweep") else { return vec![] };
    let problem =
        |key: &str, message: String| Problem { location: source.locate(key), key: key.into(), message, points: vec![] };
    let Some(sweep) = sweep.as_table() else {
        problems.push(problem("sweep", format!("expected a table of key paths to lists, found {}", sweep.type_str())));
        return vec![];
    };
    let mut axes = Vec::new();
    for (k, v) in sweep {
        if k == "zip" {
            let groups: Vec<&toml::Table> = match v {
                toml::Value::Array(a) if a.iter().all(|g| g.is_table()) => {
                    a.iter().filter_map(|g| g.as_table()).collect()
                }
                toml::Value::Table(t) => vec![t],
                other => {
                    problems.push(problem(
                        "sweep.zip",
                        format!("expected [[sweep.zip]] tables of key paths to lists, found {}", other.type_str()),
                    ));
                    continue;
                }
            };
            for (g, group) in groups.iter().enumerate() {
                let prefix = if v.is_array() { format!("sweep.zip[{g}]") } else { "sweep.zip".to_string() };
                let mut entries = Vec::new();
                flatten(group, &prefix, "", &mut entries);
                let mut lists: Vec<(String, String, Vec<toml::Value>)> = entries
                    .into_iter()
                    .filter_map(|(origin, key, value)| match value {
                        toml::Value::Array(a) => Some((origin, key, a)),
                        other => {
                            problems.push(problem(
                                &origin,
                                format!("a sweep value must be a list, found {}", other.type_str()),
                            ));
                            None
                        }
                    })
                    .collect();
                // In the file's order: the first list written sets the length.
                lists.sort_by_key(|(origin, _, _)| source.locate(origin));
                if lists.is_empty() {
                    problems.push(problem(&prefix, "a zip group needs at least one key path with a list".into()));
                    continue;
                }
                let n = lists[0].2.len();
                if let Some((origin, key, l)) = lists.iter().find(|(_, _, l)| l.len() != n) {
                    problems.push(problem(
                        origin,
                        format!(
                            "zipped lists must have the same length: `{}` has {n}, `{key}` has {}",
                            lists[0].1,
                            l.len()
                        ),
                    ));
                    continue;
                }
                axes.push(Axis {
                    keys: lists.iter().map(|(_, k, _)| k.clone()).collect(),
                    locations: lists.iter().map(|(o, _, _)| source.locate(o)).collect(),
                    values: (0..n).map(|i| lists.iter().map(|(_, _, l)| l[i].clone()).collect()).collect(),
                });
            }
            continue;
        }
        let mut entries = Vec::new();
        let single = toml::Table::from_iter([(k.clone(), v.clone())]);
        flatten(&single, "sweep", "", &mut entries);
        for (origin, key, value) in entries {
            match value {
                toml::Value::Array(a) => axes.push(Axis {
                    keys: vec![key],
                    locations: vec![source.locate(&origin)],
                    values: a.into_iter().map(|v| vec![v]).collect(),
                }),
                other => {
                    problems.push(problem(&origin, format!("a sweep value must be a list, found {}", other.type_str())))
                }
            }
        }
    }
    // The grid follows the file's order (TOML tables iterate sorted by key).
    axes.sort_by(|a, b| a.locations.first().cmp(&b.locations.first()));
    // Check every key; axes with a bad key are reported and left out of the grid, so the
    // points can still be checked for everything else.
    let mut seen = std::collections::BTreeSet::new();
    let mut good = Vec::new();
    for (a, axis) in axes.into_iter().enumerate() {
        let before = problems.len();
        for (key, loc) in axis.keys.iter().zip(&axis.locations) {
            let at = |message: String| Problem {
                location: loc.clone(),
                key: format!("sweep.\"{key}\""),
                message,
                points: vec![],
            };
            if axis.is_empty() {
                problems.push(at("a sweep list must not be empty".into()));
            }
            if RESERVED.contains(&key.as_str()) {
                problems.push(at("seeds are swept with the top-level `seeds = [...]` list, not in [sweep]".into()));
            }
            let section = key.split(['.', '[']).next().unwrap_or("");
            if !SECTIONS.contains(&section) {
                problems.push(at(format!("unknown key path: it must start with one of {}", SECTIONS.join(", "))));
            }
            if !seen.insert(key.clone()) {
                problems.push(at(format!("`{key}` is swept twice (axis {a})")));
            }
        }
        // The same value twice trains the same run twice (under two names).
        // Hashed by their debug form (equal values, equal forms), so that a list of 200,000
        // values is checked in linear time.
        let mut first: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (i, row) in axis.values.iter().enumerate() {
            if let Some(j) = first.insert(format!("{row:?}"), i) {
                let shown: Vec<String> = row.iter().map(|v| v.to_string()).collect();
                problems.push(Problem {
                    location: axis.locations[0].clone(),
                    key: format!("sweep.\"{}\"", axis.keys[0]),
                    message: format!(
                        "positions {j} and {i} of the list are the same ({}): the same run would be trained twice",
                        shown.join(", ")
                    ),
                    points: vec![],
                });
                break;
            }
        }
        if problems.len() == before {
            good.push(axis);
        }
    }
    // A key inside another swept key (`router.k` and `router`): whichever is applied last
    // would overwrite the other, so a point could be named after a value that did not run.
    // Refused, in either order.
    let keys: Vec<(String, Location)> =
        good.iter().flat_map(|a| a.keys.iter().cloned().zip(a.locations.iter().cloned())).collect();
    let by_key: std::collections::HashMap<&str, &Location> = keys.iter().map(|(k, l)| (k.as_str(), l)).collect();
    let mut overlapping = std::collections::BTreeSet::new();
    for (inner, loc) in &keys {
        // Each parent path of the key (`a.b[2].c` → `a.b[2]`, `a.b`, `a`), looked up: linear in
        // the number of axes.
        let mut parent = crate::source::parent_path(inner);
        while let Some(outer) = parent {
            parent = crate::source::parent_path(&outer);
            if let Some(outer_loc) = by_key.get(outer.as_str()) {
                overlapping.insert(inner.clone());
                overlapping.insert(outer.clone());
                problems.push(Problem {
                    location: loc.clone(),
                    key: format!("sweep.\"{inner}\""),
                    message: format!(
                        "lies inside `{outer}`, which {} sets whole; a point would be labelled with a `{inner}` that the \
                         `{outer}` value replaces. Put `{}` into each `{outer}` value instead, or sweep `{outer}`'s keys \
                         one by one",
                        outer_loc,
                        inner.strip_prefix(&format!("{outer}.")).unwrap_or(inner)
                    ),
                    points: vec![],
                });
            }
        }
    }
    good.retain(|a| !a.keys.iter().any(|k| overlapping.contains(k)));
    good
}

/// Most points a sweep may expand to (each is trained): beyond it the grid is refused before
/// it is built, instead of filling memory with combinations.
pub const MAX_POINTS: usize = 10_000;

/// Number of grid points of `axes` (the product of their lengths), `None` when it exceeds
/// [`MAX_POINTS`].
pub fn count(axes: &[Axis]) -> Option<usize> {
    axes.iter().try_fold(1usize, |n, a| n.checked_mul(a.len()).filter(|&n| n <= MAX_POINTS))
}

/// Flattens nested tables into (origin path, dotted key, leaf value): `[sweep] router.k = [1]`
/// and `[sweep] "router.k" = [1]` mean the same axis. Arrays are leaves.
fn flatten(t: &toml::Table, origin: &str, prefix: &str, out: &mut Vec<(String, String, toml::Value)>) {
    for (k, v) in t {
        let o = format!("{origin}.{k}");
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(sub) => flatten(sub, &o, &key, out),
            other => out.push((o, key, other.clone())),
        }
    }
}

/// Every combination of axis positions, the first axis varying slowest; one empty assignment
/// list when there are no axes.
pub fn combinations(axes: &[Axis]) -> Vec<Vec<Assignment>> {
    // Each combination is built directly from its index (first axis slowest), so the work is
    // the size of the output: extending prefixes axis by axis cloned each prefix once per axis,
    // quadratic in the number of axes (10,000 one-value axes took seconds).
    let total: usize = axes.iter().map(|a| a.len()).product();
    let width: usize = axes.iter().map(|a| a.keys.len()).sum();
    (0..total)
        .map(|mut c| {
            let mut rows = vec![0; axes.len()];
            for (j, axis) in axes.iter().enumerate().rev() {
                rows[j] = c % axis.len();
                c /= axis.len();
            }
            let mut out = Vec::with_capacity(width);
            for (axis, &r) in axes.iter().zip(&rows) {
                for ((key, loc), value) in axis.keys.iter().zip(&axis.locations).zip(&axis.values[r]) {
                    out.push(Assignment { key: key.clone(), value: value.clone(), location: loc.clone() });
                }
            }
            out
        })
        .collect()
}

/// A short, file-name-safe name of a point from the values it sets: `topk_k=2`,
/// `flops_target=0.5`; `base` for the point of an experiment without sweep.
pub fn point_name(assignments: &[Assignment]) -> String {
    if assignments.is_empty() {
        return "base".into();
    }
    let parts: Vec<String> = assignments.iter().map(|a| label(&a.key, &a.value)).collect();
    sanitize(&parts.join("_"))
}

fn label(key: &str, value: &toml::Value) -> String {
    let last = key.rsplit('.').next().unwrap_or(key);
    match value {
        toml::Value::Table(t) => {
            let mut parts = Vec::new();
            if let Some(kind) = t.get("kind") {
                parts.push(scalar(kind));
            }
            for (k, v) in t.iter().filter(|(k, _)| k.as_str() != "kind") {
                parts.push(format!("{k}={}", scalar(v)));
            }
            if parts.is_empty() {
                last.to_string()
            } else {
                parts.join("-")
            }
        }
        v if last == "kind" => scalar(v),
        v => format!("{last}={}", scalar(v)),
    }
}

fn scalar(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => format!("{f}"),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

fn sanitize(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "=.+-_".contains(c) { c } else { '-' }).collect();
    out.truncate(120);
    out
}

/// Sets `key` (dotted, with `[i]` for list elements) in `table` to `value`, creating missing
/// tables. Fails when a parent on the path exists but is not a table (or list, for `[i]`).
pub fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let segs = segments(key)?;
    let mut root = toml::Value::Table(std::mem::take(table));
    let result = set_in(&mut root, &segs, value, key);
    if let toml::Value::Table(t) = root {
        *table = t;
    }
    result
}

fn set_in(cur: &mut toml::Value, segs: &[Seg], value: toml::Value, key: &str) -> Result<(), String> {
    let Some((first, rest)) = segs.split_first() else {
        *cur = value;
        return Ok(());
    };
    let ty = cur.type_str();
    match first {
        Seg::Key(k) => {
            let t = cur.as_table_mut().ok_or_else(|| format!("`{key}`: the parent of `{k}` is a {ty}, not a table"))?;
            if rest.is_empty() {
                t.insert(k.clone(), value);
                return Ok(());
            }
            let next = t.entry(k.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            set_in(next, rest, value, key)
        }
        Seg::Index(i) => {
            let a = cur.as_array_mut().ok_or_else(|| format!("`{key}`: [{i}] applied to a {ty}, not a list"))?;
            let n = a.len();
            let el = a.get_mut(*i).ok_or_else(|| format!("`{key}`: the list has {n} elements; no index {i}"))?;
            set_in(el, rest, value, key)
        }
    }
}

#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(key: &str) -> Result<Vec<Seg>, String> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err(format!("`{key}`: empty key segment"));
        }
        out.push(Seg::Key(name.to_string()));
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']').ok_or_else(|| format!("`{key}`: unclosed ["))?;
            let i: usize =
                stripped[..end].parse().map_err(|_| format!("`{key}`: `{}` is not an index", &stripped[..end]))?;
            out.push(Seg::Index(i));
            rest = &stripped[end + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("`{key}`: unexpected `{rest}`"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn axis(key: &str, values: Vec<toml::Value>) -> Axis {
        Axis {
            keys: vec![key.into()],
            locations: vec![Location { file: "x".into(), line: Some(1) }],
            values: values.into_iter().map(|v| vec![v]).collect(),
        }
    }

    #[test]
    fn names_read_like_the_values() {
        let a = |key: &str, value: toml::Value| Assignment {
            key: key.into(),
            value,
            location: Location { file: "x".into(), line: None },
        };
        assert_eq!(point_name(&[a("router.kind", "topk".into()), a("router.k", 2.into())]), "topk_k=2");
        assert_eq!(point_name(&[a("train.loss.flops_target", 0.5.into())]), "flops_target=0.5");
        let t: toml::Table = toml::from_str("kind = \"dynamic-width\"\nbudget = 0.5").unwrap();
        assert_eq!(point_name(&[a("router", toml::Value::Table(t))]), "dynamic-width-budget=0.5");
        assert_eq!(point_name(&[]), "base");
    }

    #[test]
    fn set_path_creates_tables_and_indexes_arrays() {
        let mut t: toml::Table = toml::from_str("[train]\nsteps = 1\n[[train.stages]]\nsteps = 2\n").unwrap();
        set_path(&mut t, "train.loss.flops", 0.1.into()).unwrap();
        set_path(&mut t, "train.stages[0].steps", 7.into()).unwrap();
        assert_eq!(t["train"]["loss"]["flops"].as_float(), Some(0.1));
        assert_eq!(t["train"]["stages"][0]["steps"].as_integer(), Some(7));
        assert!(set_path(&mut t, "train.steps.x", 1.into()).unwrap_err().contains("not a table"));
        assert!(set_path(&mut t, "train.stages[3].steps", 1.into()).unwrap_err().contains("no index 3"));
    }

    proptest! {
        /// The grid is the full product, each combination exactly once, first axis slowest.
        #[test]
        fn combinations_are_the_product(sizes in proptest::collection::vec(1usize..4, 0..4)) {
            let axes: Vec<Axis> = sizes.iter().enumerate().map(|(i, &n)| axis(&format!("train.a{i}"), (0..n as i64).map(toml::Value::from).collect())).collect();
            let combos = combinations(&axes);
            prop_assert_eq!(combos.len(), sizes.iter().product::<usize>());
            let keys: std::collections::BTreeSet<Vec<i64>> = combos.iter().map(|c| c.iter().map(|a| a.value.as_integer().unwrap()).collect()).collect();
            prop_assert_eq!(keys.len(), combos.len());
            // First axis slowest: the sequence of combinations is sorted lexicographically.
            let seq: Vec<Vec<i64>> = combos.iter().map(|c| c.iter().map(|a| a.value.as_integer().unwrap()).collect()).collect();
            let mut sorted = seq.clone();
            sorted.sort();
            prop_assert_eq!(seq, sorted);
        }
    }
}
