//! Parity of dddit-text's burn all-MiniLM-L6-v2 with the reference: Hugging Face
//! `transformers` (`AutoTokenizer` + `BertModel`, mean pooling, `F.normalize`) on the same three
//! files. Golden values: `tests/fixtures/minilm_golden.json` (made by
//! `tools/make_minilm_fixtures.py`).
//!
//! The weights are the `minilm` asset (`dddit assets fetch minilm`); without them every test
//! here says loudly that it skips, and fails instead when `DDDIT_REQUIRE_ASSETS` is `1` or
//! names `minilm`.

use dddit_core::assets;
use dddit_core::testing::device;
use dddit_text::{EmbeddingCache, TextEncoder, TextError, MAX_SEQ_LEN};
use serde::Deserialize;
use std::sync::OnceLock;

/// Largest allowed |burn − reference| per component, for sentence embeddings and hidden states.
const TOL: f32 = 1e-4;

#[derive(Deserialize)]
struct Golden {
    meta: Meta,
    captions: Vec<Caption>,
    hidden: Vec<Hidden>,
}

#[derive(Deserialize)]
struct Meta {
    max_len: usize,
}

#[derive(Deserialize)]
struct Caption {
    text: String,
    ids: Vec<u32>,
    pooled: Vec<f32>,
}

#[derive(Deserialize)]
struct Hidden {
    text: String,
    ids: Vec<u32>,
    hidden: Vec<f32>,
}

fn golden() -> &'static Golden {
    static G: OnceLock<Golden> = OnceLock::new();
    G.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/minilm_golden.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
}

/// The encoder from the `minilm` asset, or `None` (said loudly) when it is absent; a failure
/// when `DDDIT_REQUIRE_ASSETS` demands it.
fn encoder() -> Option<TextEncoder> {
    match TextEncoder::from_assets(&device()) {
        Ok(e) => Some(e),
        Err(e @ TextError::Asset(assets::AssetError::MissingAsset { .. })) => {
            if assets::is_required("minilm") {
                panic!("DDDIT_REQUIRE_ASSETS demands the MiniLM weights but they are missing: {e}");
            }
            eprintln!("\n==================== SKIPPED ====================");
            eprintln!("MiniLM parity not checked: {e}");
            eprintln!("(set DDDIT_REQUIRE_ASSETS=1 or =minilm to make this a failure)");
            eprintln!("=================================================\n");
            None
        }
        Err(e) => panic!("the MiniLM asset is there but does not load: {e}"),
    }
}

fn texts(g: &Golden) -> Vec<&str> {
    g.captions.iter().map(|c| c.text.as_str()).collect()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn fixture_covers_what_it_should() {
    let g = golden();
    assert!(g.captions.len() >= 12);
    assert_eq!(g.meta.max_len, MAX_SEQ_LEN);
    assert!(g.captions.iter().any(|c| c.text.is_empty() && c.ids == [101, 102]));
    assert!(g.captions.iter().any(|c| c.ids.len() == MAX_SEQ_LEN), "one caption is truncated");
    for c in &g.captions {
        assert_eq!(c.pooled.len(), 384, "{:?}", c.text);
        let norm: f32 = c.pooled.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{:?}: reference norm {norm}", c.text);
    }
    for h in &g.hidden {
        assert_eq!(h.hidden.len(), h.ids.len() * 384);
    }
}

#[test]
fn token_ids_match_reference_tokenizer() {
    let Some(enc) = encoder() else { return };
    let g = golden();
    assert_eq!(enc.max_len(), g.meta.max_len);
    let batch = enc.tokenizer().encode(&texts(g)).unwrap();
    assert_eq!(batch.len, MAX_SEQ_LEN);
    for (i, c) in g.captions.iter().enumerate() {
        assert_eq!(batch.row(i), c.ids.as_slice(), "{:?}", c.text);
        assert!(
            batch.ids[i * batch.len + c.ids.len()..(i + 1) * batch.len].iter().all(|&id| id == 0),
            "padding with [PAD]"
        );
    }
}

#[test]
fn sentence_embeddings_match_reference() {
    let Some(enc) = encoder() else { return };
    let g = golden();
    assert_eq!(enc.dim(), 384);
    let e = enc.encode(&texts(g)).unwrap();
    assert_eq!(e.pooled.dims(), [g.captions.len(), 384]);
    let pooled = e.pooled.into_data().try_to_vec::<f32>().unwrap();
    let mut worst = 0.0f32;
    for (i, c) in g.captions.iter().enumerate() {
        let row = &pooled[i * 384..(i + 1) * 384];
        let err = max_abs(row, &c.pooled);
        let cos: f32 = row.iter().zip(&c.pooled).map(|(a, b)| a * b).sum();
        println!(
            "{:4} tokens  max |Δ| {err:.2e}  cos {cos:.7}  {:?}",
            c.ids.len(),
            c.text.chars().take(50).collect::<String>()
        );
        assert!(err < TOL, "{:?}: max |burn − reference| = {err:.3e}", c.text);
        worst = worst.max(err);
    }
    println!("sentence embeddings: {} captions, worst max |burn − reference| = {worst:.3e}", g.captions.len());
}

#[test]
fn hidden_states_match_reference() {
    let Some(enc) = encoder() else { return };
    let g = golden();
    let hidden_texts: Vec<&str> = g.hidden.iter().map(|h| h.text.as_str()).collect();
    let e = enc.encode(&hidden_texts).unwrap();
    let [b, len, d] = e.tokens.dims();
    assert_eq!((b, d), (g.hidden.len(), 384));
    let tokens = e.tokens.into_data().try_to_vec::<f32>().unwrap();
    let mut worst = 0.0f32;
    for (i, h) in g.hidden.iter().enumerate() {
        let n = h.ids.len();
        assert_eq!(e.lengths[i], n, "{:?}", h.text);
        let got = &tokens[i * len * d..(i * len + n) * d];
        let err = max_abs(got, &h.hidden);
        println!("{n} tokens: max |Δ| of last hidden states {err:.2e}  {:?}", h.text);
        assert!(err < TOL, "{:?}: max |burn − reference| = {err:.3e}", h.text);
        worst = worst.max(err);
    }
    println!("last hidden states: worst max |burn − reference| = {worst:.3e}");
}

#[test]
fn batching_and_cache_give_the_same_embeddings() {
    let Some(enc) = encoder() else { return };
    let g = golden();
    let dev = device();
    // Each caption alone (no padding at all) against the reference's padded batch.
    let mut worst = 0.0f32;
    for c in g.captions.iter().take(6) {
        let alone = enc.encode(&[c.text.as_str()]).unwrap().pooled.into_data().try_to_vec::<f32>().unwrap();
        worst = worst.max(max_abs(&alone, &c.pooled));
    }
    assert!(worst < TOL, "alone vs reference batch: {worst:.3e}");
    // Through the cache, in chunks of 5, in another order, with repeats.
    let mut cache = EmbeddingCache::new(enc).with_max_batch(5);
    let mut order: Vec<&str> = texts(g).into_iter().rev().collect();
    order.extend(texts(g).into_iter().take(3));
    let t = cache.embed(&order, &dev).unwrap();
    assert_eq!(t.dims(), [order.len(), 384]);
    let v = t.into_data().try_to_vec::<f32>().unwrap();
    for (i, text) in order.iter().enumerate() {
        let c = g.captions.iter().find(|c| c.text == *text).unwrap();
        let err = max_abs(&v[i * 384..(i + 1) * 384], &c.pooled);
        assert!(err < TOL, "{text:?} through the cache: {err:.3e}");
    }
    assert_eq!(cache.len(), g.captions.len());
    assert_eq!(cache.stats().misses, g.captions.len() as u64);
    assert_eq!(cache.stats().hits, 3);
}

#[test]
fn missing_asset_says_how_to_fetch_it() {
    // Only meaningful where the weights are absent; the message is what every caller shows.
    if let Err(e) = assets::require("minilm") {
        let msg = TextError::from(e).to_string();
        assert!(msg.contains("dddit assets fetch minilm"), "{msg}");
        assert!(msg.contains("--from"), "{msg}");
    }
    // A directory without the files is an I/O error naming the first file read.
    let dir = std::env::temp_dir().join(format!("dddit-text-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    match TextEncoder::from_dir(&dir, &device()) {
        Err(TextError::Io { path, .. }) => assert!(path.ends_with("config.json"), "{path:?}"),
        other => panic!("expected an I/O error, got {:?}", other.map(|e| e.dim())),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Encode speed for a batch of 64 captions (shapes- and Fashion-MNIST-like, 8–18 tokens):
/// `cargo test --release -p dddit-text --test parity_minilm -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_batch_64() {
    let Some(enc) = encoder() else { return };
    let colours = ["red", "green", "blue", "yellow"];
    let shapes = ["circle", "square", "triangle", "star"];
    let items = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"];
    let captions: Vec<String> = (0..64)
        .map(|i| {
            if i % 2 == 0 {
                format!(
                    "a small {} {} at the top left and a large {} {} in the centre",
                    colours[i % 4],
                    shapes[(i / 4) % 4],
                    colours[(i / 2) % 4],
                    shapes[(i / 8) % 4]
                )
            } else {
                format!("a photo of a {}", items[(i / 2) % 10])
            }
        })
        .collect();
    let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
    let run = || {
        let (t, c) = (std::time::Instant::now(), dddit_core::testing::cpu_seconds());
        let e = enc.encode(&refs).unwrap();
        let _ = e.pooled.into_data(); // wait for the result
        (t.elapsed().as_secs_f64(), c.zip(dddit_core::testing::cpu_seconds()).map(|(a, b)| b - a))
    };
    let (warm, _) = run();
    let runs: Vec<(f64, Option<f64>)> = (0..5).map(|_| run()).collect();
    let best = runs.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    let mean = runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64;
    let cpu = runs.iter().map(|r| r.1).collect::<Option<Vec<f64>>>().map(|c| c.iter().sum::<f64>() / c.len() as f64);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let tok = enc.tokenizer().encode(&refs).unwrap();
    println!(
        "MiniLM encode, batch 64 ({} tokens padded) on {:?}: warm-up {:.0} ms; best {:.0} ms ({:.0} sentences/s), mean {:.0} ms \
         ({:.0} sentences/s) over {} runs; CPU {} ms per batch; load average {}",
        tok.len,
        enc.device(),
        warm * 1e3,
        best * 1e3,
        64.0 / best,
        mean * 1e3,
        64.0 / mean,
        runs.len(),
        cpu.map_or("?".into(), |c| format!("{:.0}", c * 1e3)),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}
