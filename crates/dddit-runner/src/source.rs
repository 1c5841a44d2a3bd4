//! Reading an experiment file with its `include`s into one TOML table, remembering for every
//! key path the file and line that set it, so that any later error can point at the line.

use crate::error::{Location, Problem, RunnerError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An experiment file merged with everything it includes.
#[derive(Clone, Debug)]
pub struct Source {
    /// The experiment file itself.
    pub path: PathBuf,
    /// Included files first (in order, recursively), then the file itself over them: tables
    /// merge key by key, any other value replaces. `include` itself is removed.
    pub table: toml::Table,
    /// Where each key path (`train.loss.flops`, `train.stages[0].steps`) was last set.
    pub origins: BTreeMap<String, Location>,
}

impl Source {
    /// Reads `path` and its includes. Syntax errors, missing includes and include cycles are
    /// reported together as [`RunnerError::Invalid`].
    pub fn load(path: &Path) -> Result<Source, RunnerError> {
        let mut src = Source { path: path.to_path_buf(), table: toml::Table::new(), origins: BTreeMap::new() };
        let mut problems = Vec::new();
        let mut stack = Vec::new();
        src.load_into(path, &mut stack, &mut problems, None);
        if problems.is_empty() {
            Ok(src)
        } else {
            Err(RunnerError::Invalid(problems))
        }
    }

    fn load_into(
        &mut self,
        path: &Path,
        stack: &mut Vec<PathBuf>,
        problems: &mut Vec<Problem>,
        from: Option<Location>,
    ) {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let problem = |location: Location, key: &str, message: String| Problem {
            location,
            key: key.into(),
            message,
            points: vec![],
        };
        let here = from.clone().unwrap_or(Location { file: path.to_path_buf(), line: None });
        if stack.contains(&canonical) {
            let chain: Vec<String> = stack.iter().chain([&canonical]).map(|p| p.display().to_string()).collect();
            problems.push(problem(here, "include", format!("include cycle: {}", chain.join(" → "))));
            return;
        }
        let text = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    // TOML is UTF-8: say where the first bad byte is, as an editor would.
                    let bytes = e.as_bytes();
                    let at = e.utf8_error().valid_up_to();
                    let line = line_of_bytes(bytes, at);
                    let column = at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
                    problems.push(problem(
                        Location { file: path.to_path_buf(), line: Some(line) },
                        "(encoding)",
                        format!(
                            "not UTF-8 text: byte 0x{:02x} at line {line}, column {column} (byte offset {at}); TOML files must be UTF-8",
                            bytes[at]
                        ),
                    ));
                    return;
                }
            },
            Err(e) => {
                let key = if from.is_some() { "include" } else { "(file)" };
                problems.push(problem(here, key, format!("cannot read {}: {e}", path.display())));
                return;
            }
        };
        let doc = match toml_edit::ImDocument::parse(text.as_str()) {
            Ok(d) => d,
            Err(e) => {
                let line = e.span().map(|s| line_of(&text, s.start));
                problems.push(problem(
                    Location { file: path.to_path_buf(), line },
                    "(syntax)",
                    e.message().trim().to_string(),
                ));
                return;
            }
        };
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                problems.push(problem(Location { file: path.to_path_buf(), line: None }, "(syntax)", e.to_string()));
                return;
            }
        };
        let mut origins = BTreeMap::new();
        record_table(doc.as_table(), "", path, &Lines::new(&text), &mut origins);

        // Includes first, so this file's values win.
        stack.push(canonical);
        let includes = match table.get("include") {
            None => vec![],
            Some(toml::Value::String(s)) => vec![s.clone()],
            Some(toml::Value::Array(a)) if a.iter().all(|v| v.is_str()) => {
                a.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
            }
            Some(other) => {
                let loc = origins.get("include").cloned().unwrap_or(Location { file: path.to_path_buf(), line: None });
                problems.push(problem(
                    loc,
                    "include",
                    format!("expected a file name or a list of file names, found {}", other.type_str()),
                ));
                vec![]
            }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        for inc in includes {
            let loc = origins.get("include").cloned();
            self.load_into(&dir.join(&inc), stack, problems, loc);
        }
        stack.pop();

        let mut table = table;
        table.remove("include");
        merge(&mut self.table, table);
        origins.remove("include");
        self.origins.extend(origins);
    }

    /// Where `key` (a path as in [`Source::origins`]) was set: the key itself, else its
    /// nearest parent that appears in a file, else the experiment file without a line.
    pub fn locate(&self, key: &str) -> Location {
        let mut k = key.to_string();
        loop {
            if let Some(l) = self.origins.get(&k) {
                return l.clone();
            }
            match parent_path(&k) {
                Some(p) => k = p,
                None => return Location { file: self.path.clone(), line: None },
            }
        }
    }
}

/// The parent of a key path: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → none.
pub fn parent_path(key: &str) -> Option<String> {
    let cut = key.rfind(['.', '['])?;
    Some(key[..cut].to_string())
}

/// Merges `over` into `base`: tables recursively, anything else replaced.
pub fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    line_of_bytes(text.as_bytes(), offset)
}

fn line_of_bytes(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Line numbers of byte offsets by binary search over the newlines, so that recording the
/// line of every key stays linear in the file's size (a 200,000-value sweep list took two
/// minutes when each key counted the newlines before it).
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i).collect())
    }

    /// 1-based line of byte `offset`.
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&n| n < offset) + 1
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn record_table(
    table: &toml_edit::Table,
    prefix: &str,
    file: &Path,
    text: &Lines,
    out: &mut BTreeMap<String, Location>,
) {
    for (key, item) in table.iter() {
        let path = join(prefix, key);
        let span = table.key(key).and_then(|k| k.span()).or_else(|| item.span());
        if let Some(s) = span {
            out.insert(path.clone(), Location { file: file.to_path_buf(), line: Some(text.line(s.start)) });
        }
        match item {
            toml_edit::Item::Table(t) => {
                // A `[section]` header: its own span is the header line.
                if let Some(s) = t.span() {
                    out.insert(path.clone(), Location { file: file.to_path_buf(), line: Some(text.line(s.start)) });
                }
                record_table(t, &path, file, text, out);
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    if let Some(s) = t.span() {
                        out.insert(p.clone(), Location { file: file.to_path_buf(), line: Some(text.line(s.start)) });
                    }
                    record_table(t, &p, file, text, out);
                }
            }
            toml_edit::Item::Value(v) => record_value(v, &path, file, text, out),
            toml_edit::Item::None => {}
        }
    }
}

fn record_value(value: &toml_edit::Value, path: &str, file: &Path, text: &Lines, out: &mut BTreeMap<String, Location>) {
    match value {
        toml_edit::Value::InlineTable(t) => {
            for (key, v) in t.iter() {
                let p = join(path, key);
                if let Some(s) = t.key(key).and_then(|k| k.span()).or_else(|| v.span()) {
                    out.insert(p.clone(), Location { file: file.to_path_buf(), line: Some(text.line(s.start)) });
                }
                record_value(v, &p, file, text, out);
            }
        }
        toml_edit::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(s) = v.span() {
                    out.insert(p.clone(), Location { file: file.to_path_buf(), line: Some(text.line(s.start)) });
                }
                record_value(v, &p, file, text, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn includes_merge_and_lines_point_at_the_winning_file() {
        let dir = std::env::temp_dir().join(format!("dddit-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(
            &dir,
            "common.toml",
            "device = \"flex\"\n\n[train]\nsteps = 10\nlr = 0.1\n\n[train.loss]\nbalance = 0.5\n",
        );
        let main = write(
            &dir,
            "main.toml",
            "include = \"common.toml\"\n[train]\nlr = 0.2\n[[train.stages]]\nsteps = 3\ntrain = \"all\"\n",
        );
        let src = Source::load(&main).unwrap();
        assert_eq!(src.table["train"]["steps"].as_integer(), Some(10));
        assert_eq!(src.table["train"]["lr"].as_float(), Some(0.2));
        assert!(src.table.get("include").is_none());
        let loc = |k: &str| src.locate(k);
        assert_eq!(loc("train.lr"), Location { file: main.clone(), line: Some(3) });
        assert_eq!(loc("train.steps"), Location { file: dir.join("common.toml"), line: Some(4) });
        assert_eq!(loc("train.loss.balance").line, Some(8));
        assert_eq!(loc("train.stages[0].steps"), Location { file: main.clone(), line: Some(5) });
        // An unknown key below a known one falls back to its parent's line.
        assert_eq!(loc("train.loss.nope").line, Some(7));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn syntax_errors_missing_includes_and_cycles_are_all_reported() {
        let dir = std::env::temp_dir().join(format!("dddit-source-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "a.toml", "include = [\"b.toml\", \"missing.toml\"]\n");
        write(&dir, "b.toml", "include = \"a.toml\"\n");
        let err = Source::load(&dir.join("a.toml")).unwrap_err().to_string();
        assert!(err.contains("include cycle"), "{err}");
        assert!(err.contains("missing.toml"), "{err}");
        write(&dir, "syntax.toml", "[train]\nsteps = \n");
        let err = Source::load(&dir.join("syntax.toml")).unwrap_err().to_string();
        assert!(err.contains("syntax.toml:2"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("a.b[2]").as_deref(), Some("a.b"));
        assert_eq!(parent_path("a.b").as_deref(), Some("a"));
        assert_eq!(parent_path("a"), None);
    }
}
