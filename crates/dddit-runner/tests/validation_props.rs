//! Experiment files generated from the schema, valid and mutated: `Experiment::open` (what
//! `dddit run --dry-run` does before it lists the runs) accepts every valid one and reports
//! every mutated key of a broken one with the file, its own line and its key, never panics,
//! never aborts (the test process would die) and finishes in bounded time.

use dddit_runner::{Experiment, RunnerError};
use proptest::prelude::*;
use std::time::{Duration, Instant};

/// One `key = value` line of a section (`""`: top level).
#[derive(Clone, Debug)]
struct Entry {
    section: &'static str,
    key: String,
    value: String,
}

fn e(section: &'static str, key: &str, value: &str) -> Entry {
    Entry { section, key: key.into(), value: value.into() }
}

/// What a mutation breaks, so that a problem hidden by another mutation is not expected.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Needs {
    /// Reported whatever else is wrong (keys, types, ranges of their own).
    Nothing,
    /// Checked against the model: needs a valid preset and image size.
    Model,
    /// Checked against the data set: needs valid data settings and a valid model.
    Data,
    /// Checked on the built model's size: needs a valid model, device and router table.
    Router,
}

/// A mutation: the line it sets, the key the problem must name, whether the key's line is its
/// own or its section's, and what it needs.
#[derive(Clone, Debug)]
struct Mutation {
    entry: Entry,
    reported: &'static str,
    needs: Needs,
    breaks: Needs,
}

fn m(section: &'static str, key: &str, value: &str, reported: &'static str, needs: Needs, breaks: Needs) -> Mutation {
    Mutation { entry: e(section, key, value), reported, needs, breaks }
}

/// Bad values a careless or hostile user writes, per key of the schema.
fn mutations() -> Vec<Mutation> {
    use Needs::*;
    vec![
        m("train", "lr", "-1e-3", "train.lr", Nothing, Nothing),
        m("train", "ema_decay", "5.0", "train.ema_decay", Nothing, Nothing),
        m("train", "steps", "\"two\"", "train.steps", Nothing, Nothing),
        m("train", "steps", "0", "train.steps", Nothing, Nothing),
        m("train", "batch_size", "0", "train.batch_size", Nothing, Nothing),
        m("train", "batch_size", "100000", "train.batch_size", Data, Nothing),
        m("train", "stepz", "10", "train.stepz", Nothing, Nothing),
        m("train", "grad_clip", "nan", "train.grad_clip", Nothing, Nothing),
        m("train", "warmup_steps", "-5", "train.warmup_steps", Nothing, Nothing),
        m("train.loss", "balance", "-1.0", "train.loss.balance", Nothing, Nothing),
        m("train.loss", "flops_target", "inf", "train.loss.flops_target", Nothing, Nothing),
        m("train.loss", "flops_target", "3.0", "train.loss.flops_target", Nothing, Nothing),
        m("router", "k", "1.5", "router.k", Nothing, Nothing),
        m("router", "k", "0", "router.k", Model, Nothing),
        m("router", "tokn", "1", "router.tokn", Nothing, Nothing),
        m("router", "capacity", "inf", "router.capacity", Nothing, Nothing),
        m("router", "experts", "true", "router.experts", Nothing, Nothing),
        m("router", "expert_hidden", "100000000000", "router", Router, Nothing),
        m("data", "len", "0", "data.len", Nothing, Data),
        m("data", "size", "17", "data.size", Nothing, Model),
        m("data", "max_objects", "10", "data.max_objects", Nothing, Data),
        m("data", "colour", "\"red\"", "data.colour", Nothing, Nothing),
        m("model", "preset", "\"DiT-Q/4\"", "model.preset", Nothing, Model),
        m("model", "class_dropout_prob", "2.0", "model.class_dropout_prob", Nothing, Model),
        m("eval", "samples", "1", "eval.samples", Nothing, Nothing),
        m("eval", "samples", "1000000000000", "eval.samples", Data, Nothing),
        m("eval", "pr_k", "0", "eval.pr_k", Nothing, Nothing),
        m("eval", "features", "[\"nope\"]", "eval.features[0]", Nothing, Nothing),
        m("eval.sample", "steps", "0", "eval.sample.steps", Nothing, Nothing),
        m("", "precision", "\"fp8\"", "precision", Nothing, Nothing),
        m("", "device", "\"gpu\"", "device", Nothing, Nothing),
        m("", "seeds", "[1, 1]", "seeds", Nothing, Nothing),
        m("", "bogus", "1", "bogus", Nothing, Nothing),
        m("sweep", "\"train.loss.balance\"", "[0.1, 0.2, 0.1]", "sweep.\"train.loss.balance\"", Nothing, Nothing),
        // Two axes, one inside the other (the value carries the second line).
        m(
            "sweep",
            "\"router.k\"",
            "[1, 2]\nrouter = [{ kind = \"topk\", experts = 4 }]",
            "sweep.\"router.k\"",
            Nothing,
            Nothing,
        ),
        m("sweep", "\"trian.steps\"", "[1]", "sweep.\"trian.steps\"", Nothing, Nothing),
    ]
}

/// Every registered router with each key its documentation gives a TOML default for, written
/// out (so the documented defaults must validate too), plus a few non-default tables.
fn router_tables() -> Vec<Vec<(String, String)>> {
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut out: Vec<Vec<(String, String)>> = dddit_routers::routers()
        .into_iter()
        .map(|e| {
            let mut t = vec![pair("kind", &format!("\"{}\"", e.name))];
            for k in (e.keys)() {
                // Fixed defaults only: a model's default depends on the model the strategy
                // picks later, and a rule ("k > 1") is not a setting to write out.
                if let dddit_routers::KeyDefault::Fixed(v) = k.default {
                    t.push(pair(k.key, v));
                }
            }
            t
        })
        .collect();
    out.push(vec![pair("kind", "\"topk\""), pair("experts", "4"), pair("k", "1")]);
    out.push(vec![pair("kind", "\"topk\""), pair("experts", "3"), pair("k", "2"), pair("expert_hidden", "16")]);
    out.push(vec![pair("kind", "\"expert-choice\""), pair("experts", "2"), pair("capacity", "1.5")]);
    out
}

/// A valid experiment, varied within the schema.
fn valid() -> impl Strategy<Value = Vec<Entry>> {
    let routers = prop::sample::select(router_tables());
    (routers, 1usize..6, 1usize..9, prop::sample::select(vec!["1e-4", "3e-4", "0.001"]), 1usize..4, any::<bool>())
        .prop_map(|(router, steps, batch, lr, seeds, sweep)| {
            let mut v = vec![
                e("", "name", "\"gen\""),
                e("", "seeds", &format!("[{}]", (0..seeds).map(|s| s.to_string()).collect::<Vec<_>>().join(", "))),
                e("model", "preset", "\"DiT-N/4\""),
                e("data", "kind", "\"shapes\""),
                e("data", "size", "16"),
                e("data", "len", "64"),
                e("train", "steps", &steps.to_string()),
                e("train", "batch_size", &batch.to_string()),
                e("train", "lr", lr),
                e("train.loss", "flops_target", "1.0"),
                e("eval", "samples", "8"),
                e("eval", "reference_samples", "8"),
                e("eval.sample", "steps", "4"),
            ];
            v.extend(router.iter().map(|(k, val)| e("router", k, val)));
            if sweep {
                v.push(e("sweep", "\"train.loss.entropy\"", "[0.0, 0.01]"));
            }
            v
        })
}

/// Renders `entries` as TOML, one key per line; returns the text and the 1-based line of each
/// `section.key` (and of each section header, under the section's name).
fn render(entries: &[Entry]) -> (String, std::collections::HashMap<String, usize>) {
    let mut lines: Vec<String> = Vec::new();
    let mut n = 0usize;
    let mut at = std::collections::HashMap::new();
    let order = ["", "model", "router", "data", "train", "train.loss", "eval", "eval.sample", "sweep"];
    for section in order {
        let here: Vec<&Entry> = entries.iter().filter(|x| x.section == section).collect();
        if here.is_empty() {
            continue;
        }
        if !section.is_empty() {
            lines.push(format!("[{section}]"));
            n += 1;
            at.insert(section.to_string(), n);
        }
        for x in here {
            lines.push(format!("{} = {}", x.key, x.value));
            let full = if section.is_empty() { x.key.clone() } else { format!("{section}.{}", x.key) };
            at.insert(full, n + 1);
            n += 1 + x.value.matches('\n').count();
        }
    }
    (lines.join("\n") + "\n", at)
}

/// Applies `chosen` (indices into the mutation table) to `base`; returns the mutations kept
/// (one per key; those whose check another mutation makes impossible are dropped).
fn apply(base: &mut Vec<Entry>, chosen: &[usize]) -> Vec<Mutation> {
    let table = mutations();
    let mut kept: Vec<Mutation> = Vec::new();
    for &i in chosen {
        let mu = &table[i % table.len()];
        if kept.iter().any(|k| k.entry.key == mu.entry.key && k.entry.section == mu.entry.section) {
            continue;
        }
        kept.push(mu.clone());
    }
    // The expert width is a key of the mixture routers only (elsewhere it is an unknown key,
    // reported under its own name, which another mutation covers).
    let kind = base.iter().find(|x| x.section == "router" && x.key == "kind").map(|x| x.value.clone());
    if !matches!(kind.as_deref(), Some("\"topk\"") | Some("\"expert-choice\"")) {
        kept.retain(|k| k.entry.key != "expert_hidden");
    }
    let broken_model = kept.iter().any(|k| k.breaks == Needs::Model);
    let broken_data = broken_model || kept.iter().any(|k| k.breaks == Needs::Data);
    // Any other bad router key makes the table invalid (nothing to count); a bad device leaves
    // no memory to compare with.
    let others_break_router = |me: &Mutation| {
        broken_model
            || kept.iter().any(|k| {
                (k.entry.section == "router" && k.entry.key != me.entry.key)
                    || (k.entry.section.is_empty() && k.entry.key == "device")
            })
    };
    let keep: Vec<bool> = kept
        .iter()
        .map(|k| match k.needs {
            Needs::Nothing => true,
            Needs::Model => !broken_model,
            Needs::Data => !broken_data,
            Needs::Router => !others_break_router(k),
        })
        .collect();
    let mut flags = keep.into_iter();
    kept.retain(|_| flags.next().unwrap_or(true));
    for k in &kept {
        match base.iter_mut().find(|x| x.section == k.entry.section && x.key == k.entry.key) {
            Some(x) => x.value = k.entry.value.clone(),
            None => base.push(k.entry.clone()),
        }
    }
    kept
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("dddit-validation-props-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

proptest! {
    #[test]
    fn dry_run_accepts_valid_files_and_names_every_mutated_key(
        base in valid(),
        chosen in prop::collection::vec(0usize..1000, 0..5),
    ) {
        let mut entries = base;
        let kept = apply(&mut entries, &chosen);
        let (text, lines) = render(&entries);
        let path = dir().join(format!("gen-{}.toml", chosen.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("-")));
        std::fs::write(&path, &text).unwrap();
        let t0 = Instant::now();
        let result = std::panic::catch_unwind(|| Experiment::open(&path));
        let elapsed = t0.elapsed();
        let _ = std::fs::remove_file(&path);
        prop_assert!(result.is_ok(), "validation panicked on:\n{text}");
        // A hang detector, not a speed target: one small file validates in milliseconds.
        prop_assert!(elapsed < Duration::from_secs(60), "{elapsed:?} on:\n{text}");
        match result.unwrap() {
            Ok(exp) => prop_assert!(kept.is_empty(), "accepted with mutations {kept:?}:\n{text}\n{} runs", exp.runs.len()),
            Err(RunnerError::Invalid(problems)) => {
                prop_assert!(!kept.is_empty(), "a valid file was refused:\n{text}\n{problems:?}");
                for p in &problems {
                    prop_assert!(p.location.line.is_some() && !p.key.is_empty(), "no line or key: {p}\n{text}");
                    prop_assert_eq!(&p.location.file, &path);
                }
                for k in &kept {
                    let own = if k.entry.section.is_empty() {
                        k.entry.key.clone()
                    } else {
                        format!("{}.{}", k.entry.section, k.entry.key)
                    };
                    // A problem about the router as a whole is on its section's line.
                    let line = lines.get(k.reported).or_else(|| lines.get(&own)).copied();
                    prop_assert!(
                        problems.iter().any(|p| p.key == k.reported && p.location.line == line),
                        "`{}` (line {line:?}) not reported; got:\n{}\nfor:\n{text}",
                        k.reported,
                        problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
                    );
                }
            }
            Err(other) => prop_assert!(false, "not a validation error: {other}"),
        }
    }
}
