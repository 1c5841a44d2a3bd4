//! Tests of the data sets, the batcher and the batch order.

use dddit_data::fashion_mnist::{
    gunzip_if_needed, parse_idx_images, parse_idx_labels, CLASS_NAMES, DEFAULT_DIR, IMAGES_MAGIC, LABELS_MAGIC,
};
use dddit_data::{
    BatchOrderConfig, BatcherConfig, Cell, DataError, Dataset, FashionMnist, FashionMnistConfig, Position, ShapeKind,
    ShapesConfig, Split,
};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

// ---------------------------------------------------------------- shapes

#[test]
fn shapes_are_deterministic_per_seed_and_index() {
    for size in [16, 32, 64] {
        let a = ShapesConfig { size, len: 20, seed: 11, ..Default::default() }.init().unwrap();
        let b = ShapesConfig { size, len: 20, seed: 11, ..Default::default() }.init().unwrap();
        let c = ShapesConfig { size, len: 20, seed: 12, ..Default::default() }.init().unwrap();
        for i in 0..20 {
            assert_eq!(a.get(i), b.get(i), "size {size}, index {i}");
        }
        // Querying in another order gives the same samples (no hidden state).
        assert_eq!(a.get(7), b.get(7));
        let differing = (0..20).filter(|&i| a.get(i).image != c.get(i).image).count();
        assert_eq!(differing, 20, "another seed gives other images");
        let differing = (0..19).filter(|&i| a.get(i).image != a.get(i + 1).image).count();
        assert_eq!(differing, 19, "neighbouring indices differ");
    }
}

#[test]
fn shapes_captions_mention_every_object() {
    let shapes = ShapesConfig { size: 32, max_objects: 4, len: 200, seed: 3, ..Default::default() }.init().unwrap();
    assert_eq!(shapes.num_classes(), ShapeKind::ALL.len());
    assert!(shapes.num_classes() >= 4);
    assert_eq!(shapes.class_names().len(), shapes.num_classes());
    assert_eq!((shapes.channels(), shapes.size(), shapes.name()), (3, 32, "shapes"));
    for i in 0..200 {
        let s = shapes.get(i);
        assert!((1..=4).contains(&s.objects.len()));
        assert_eq!(s.label, s.objects[0].kind.index());
        assert_eq!(shapes.class_names()[s.label], s.objects[0].kind.name());
        let clauses: Vec<&str> = s.caption.split(", ").flat_map(|p| p.split(" and ")).collect();
        assert_eq!(clauses.len(), s.objects.len(), "{}", s.caption);
        for (o, clause) in s.objects.iter().zip(&clauses) {
            assert!(clause.starts_with(&format!("a {} {} {} ", o.size.name(), o.colour.name(), o.kind.name())));
            assert!(clause.ends_with(o.cell.name()), "{clause} / {:?}", o.cell);
            assert!(s.caption.contains(o.colour.name()) && s.caption.contains(o.kind.name()));
        }
    }
}

#[test]
fn shapes_complexity_and_value_range() {
    for textured in [false, true] {
        let shapes =
            ShapesConfig { size: 32, max_objects: 3, textured_background: textured, len: 300, seed: 1 }.init().unwrap();
        let mut by_count = [(0.0f64, 0usize); 4];
        for i in 0..300 {
            let s = shapes.get(i);
            assert_eq!(s.complexity.objects, s.objects.len());
            assert!(s.image.iter().all(|v| (-1.0..=1.0).contains(v)));
            let (lo, hi) = s.image.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            assert!(hi - lo > 0.3, "image {i} is nearly constant");
            assert!(s.complexity.edge_density > 0.0 && s.complexity.edge_density < 1.0);
            let e = &mut by_count[s.objects.len()];
            e.0 += s.complexity.edge_density as f64;
            e.1 += 1;
        }
        let means: Vec<f64> = by_count[1..].iter().map(|(sum, n)| sum / *n as f64).collect();
        assert!(by_count[1..].iter().all(|(_, n)| *n > 30), "{by_count:?}");
        assert!(means[0] < means[1] && means[1] < means[2], "textured {textured}: mean edge density {means:?}");
    }
}

#[test]
fn textured_background_differs_but_stays_low_contrast() {
    let plain = ShapesConfig { size: 32, len: 10, ..Default::default() }.init().unwrap();
    let textured = ShapesConfig { size: 32, len: 10, textured_background: true, ..Default::default() }.init().unwrap();
    for i in 0..10 {
        let (p, t) = (plain.get(i), textured.get(i));
        assert_eq!(p.objects, t.objects, "texture does not change the scene");
        assert_ne!(p.image, t.image);
        // The background alone (no objects) has no edges: texture is below the edge threshold.
        let p_edges = p.complexity.edge_density;
        assert!((t.complexity.edge_density - p_edges).abs() < 0.02, "{p_edges} vs {}", t.complexity.edge_density);
    }
}

#[test]
fn shapes_config_errors() {
    let e = ShapesConfig { size: 28, ..Default::default() }.init().unwrap_err().to_string();
    assert!(e.contains("16, 32 or 64"), "{e}");
}

// ---------------------------------------------------------------- fashion-mnist: IDX parsing

fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Three 28×28 images: all 0, all 255, and a bright vertical bar; labels 0, 9, 4.
fn tiny_fashion() -> (Vec<u8>, Vec<u8>) {
    let mut pixels = vec![0u8; 28 * 28];
    pixels.extend(vec![255u8; 28 * 28]);
    pixels.extend((0..28 * 28).map(|i| if (10..14).contains(&(i % 28)) { 255 } else { 0 }));
    (idx(IMAGES_MAGIC, &[3, 28, 28], &pixels), idx(LABELS_MAGIC, &[3], &[0, 9, 4]))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dddit-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn idx_parsing_in_memory_and_gzipped() {
    let (images, labels) = tiny_fashion();
    let p = Path::new("mem");
    let parsed = parse_idx_images(&gunzip_if_needed(gz(&images), p).unwrap(), p).unwrap();
    assert_eq!((parsed.count, parsed.rows, parsed.cols), (3, 28, 28));
    assert_eq!(parse_idx_images(&gunzip_if_needed(images.clone(), p).unwrap(), p).unwrap(), parsed);
    let labels = parse_idx_labels(&gunzip_if_needed(gz(&labels), p).unwrap(), p).unwrap();
    assert_eq!(labels, vec![0, 9, 4]);

    let ds = FashionMnist::from_idx(parsed.clone(), labels.clone(), Split::Test, false).unwrap();
    assert_eq!((ds.len(), ds.channels(), ds.size(), ds.num_classes()), (3, 1, 28, 10));
    let s0 = ds.get(0);
    assert!(s0.image.iter().all(|&v| v == -1.0));
    assert_eq!((s0.label, s0.caption.as_str()), (0, "a photo of a t-shirt/top"));
    assert_eq!(s0.complexity.objects, 1);
    assert_eq!(s0.complexity.edge_density, 0.0);
    assert!(ds.get(1).image.iter().all(|&v| v == 1.0));
    assert_eq!(ds.get(1).caption, "a photo of an ankle boot");
    let bar = ds.get(2);
    assert_eq!(bar.caption, "a photo of a coat");
    assert!((bar.complexity.edge_density - 4.0 / 28.0).abs() < 1e-6, "{}", bar.complexity.edge_density);

    // Padding to 32×32 centres the image in a frame of −1.
    let padded = FashionMnist::from_idx(parsed.clone(), labels.clone(), Split::Test, true).unwrap();
    assert_eq!(padded.size(), 32);
    let img = padded.get(1).image;
    assert_eq!(img.len(), 32 * 32);
    for y in 0..32 {
        for x in 0..32 {
            let inside = (2..30).contains(&x) && (2..30).contains(&y);
            assert_eq!(img[y * 32 + x], if inside { 1.0 } else { -1.0 }, "({x}, {y})");
        }
    }

    // Mismatched counts and bad labels.
    let e = FashionMnist::from_idx(parsed.clone(), vec![0, 1], Split::Test, false).unwrap_err();
    assert!(matches!(e, DataError::Mismatch { .. }), "{e}");
    let e = FashionMnist::from_idx(parsed, vec![0, 1, 10], Split::Test, false).unwrap_err().to_string();
    assert!(e.contains("label 10"), "{e}");
    let small = parse_idx_images(&idx(IMAGES_MAGIC, &[1, 2, 2], &[0, 0, 0, 0]), p).unwrap();
    let e = FashionMnist::from_idx(small, vec![0], Split::Test, false).unwrap_err().to_string();
    assert!(e.contains("2×2") && e.contains("28×28"), "{e}");
}

#[test]
fn idx_header_errors_name_the_file() {
    let dir = temp_dir("bad-header");
    let (images, labels) = tiny_fashion();
    // Swap the files: the images file holds labels.
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gz(&labels)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gz(&images)).unwrap();
    let e = FashionMnistConfig::new(Split::Test).with_dir(&dir).init().unwrap_err().to_string();
    assert!(e.contains("t10k-images-idx3-ubyte.gz") && e.contains("magic"), "{e}");
    // Truncated payload.
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gz(&images[..images.len() - 5])).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gz(&labels)).unwrap();
    let e = FashionMnistConfig::new(Split::Test).with_dir(&dir).init().unwrap_err().to_string();
    assert!(e.contains("t10k-images-idx3-ubyte.gz") && e.contains("header says 3×28×28"), "{e}");
    // Label count mismatch names both files.
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gz(&images)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gz(&idx(LABELS_MAGIC, &[2], &[1, 2]))).unwrap();
    let e = FashionMnistConfig::new(Split::Test).with_dir(&dir).init().unwrap_err().to_string();
    assert!(e.contains("t10k-images") && e.contains("t10k-labels") && e.contains("3 images but 2 labels"), "{e}");
    // Corrupt gzip.
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), [0x1f, 0x8b, 1, 2, 3]).unwrap();
    let e = FashionMnistConfig::new(Split::Test).with_dir(&dir).init().unwrap_err().to_string();
    assert!(e.contains("t10k-labels-idx1-ubyte.gz"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fashion_mnist_loads_from_a_directory_gz_or_plain() {
    let dir = temp_dir("load");
    let (images, labels) = tiny_fashion();
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz(&images)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gz(&labels)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), &images).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), &labels).unwrap();
    let train = FashionMnistConfig::new(Split::Train).with_dir(&dir).init().unwrap();
    let test = FashionMnistConfig::new(Split::Test).with_dir(&dir).with_pad_to_32(true).init().unwrap();
    assert_eq!((train.len(), train.size(), test.len(), test.size()), (3, 28, 3, 32));
    assert_eq!(train.labels(), &[0, 9, 4]);
    assert_eq!(train.name(), "fashion-mnist");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_directory_says_how_to_install() {
    let dir = std::env::temp_dir().join("dddit-no-such-fashion-mnist-dir");
    let e = FashionMnistConfig::new(Split::Train).with_dir(&dir).init().unwrap_err();
    assert!(matches!(e, DataError::Missing { .. }));
    let msg = e.to_string();
    assert!(msg.contains(&dir.join("train-images-idx3-ubyte.gz").display().to_string()), "{msg}");
    assert!(msg.contains("sudo apt-get install dataset-fashion-mnist"), "{msg}");
    assert!(msg.contains("directory containing the IDX files"), "{msg}");
}

#[test]
fn fashion_mnist_real_files() {
    if !Path::new(DEFAULT_DIR).is_dir() {
        eprintln!("skipping: {DEFAULT_DIR} does not exist (sudo apt-get install dataset-fashion-mnist)");
        return;
    }
    let train = FashionMnistConfig::new(Split::Train).init().unwrap();
    let test = FashionMnistConfig::new(Split::Test).with_pad_to_32(true).init().unwrap();
    assert_eq!(train.len() + test.len(), 70_000);
    assert_eq!((train.len(), test.len()), (Split::Train.official_len(), Split::Test.official_len()));
    assert_eq!(train.class_names(), CLASS_NAMES.map(String::from).to_vec());
    for (ds, size) in [(&train, 28), (&test, 32)] {
        let mut counts = [0usize; 10];
        for &l in ds.labels() {
            counts[l as usize] += 1;
        }
        // Fashion-MNIST is balanced: 6000 / 1000 per class.
        assert!(counts.iter().all(|&c| c == ds.len() / 10), "{counts:?}");
        for i in [0, 1, ds.len() / 2, ds.len() - 1] {
            let s = ds.get(i);
            assert_eq!(s.image.len(), size * size);
            assert!(s.image.iter().all(|v| (-1.0..=1.0).contains(v)));
            assert!(s.image.iter().any(|&v| v > 0.0), "image {i} is not blank");
            assert!(s.complexity.edge_density > 0.0);
            assert_eq!(s.caption, FashionMnist::caption(s.label));
        }
    }
    // The first training image of the official release is an ankle boot; the first test image too.
    assert_eq!(train.get(0).label, 9);
    assert_eq!(test.get(0).label, 9);
}

// ---------------------------------------------------------------- batcher and order

#[test]
fn batcher_builds_tensors_of_the_right_shapes() {
    let device = dddit_core::testing::device();
    let shapes = Arc::new(ShapesConfig { size: 16, len: 40, seed: 2, ..Default::default() }.init().unwrap());
    let batcher = BatcherConfig::default().init(shapes.clone(), &device);
    let indices = [3, 1, 4, 15, 9];
    let batch = batcher.batch(&indices, 0);
    assert_eq!(batch.x.dims(), [5, 3, 16, 16]);
    assert_eq!(batch.y.dims(), [5]);
    assert_eq!(batch.complexity.dims(), [5, 2]);
    assert_eq!(batch.captions.len(), 5);
    assert_eq!(batch.indices, indices.to_vec());
    assert!(batch.flipped.iter().all(|f| !f));
    let x = batch.x.into_data().try_to_vec::<f32>().unwrap();
    let y: Vec<i64> = batch.y.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
    let cx = batch.complexity.into_data().try_to_vec::<f32>().unwrap();
    for (k, &i) in indices.iter().enumerate() {
        let s = shapes.get(i);
        assert_eq!(&x[k * 768..(k + 1) * 768], s.image.as_slice());
        assert_eq!(y[k], s.label as i64);
        assert_eq!(batch.captions[k], s.caption);
        assert_eq!([cx[2 * k], cx[2 * k + 1]], [s.complexity.objects as f32, s.complexity.edge_density]);
    }

    // A dyn data set works too (Fashion-MNIST from memory, padded).
    let (images, labels) = tiny_fashion();
    let p = Path::new("mem");
    let fm = FashionMnist::from_idx(
        parse_idx_images(&images, p).unwrap(),
        parse_idx_labels(&labels, p).unwrap(),
        Split::Test,
        true,
    )
    .unwrap();
    let dynamic: Arc<dyn Dataset> = Arc::new(fm);
    let batch = BatcherConfig::new(true, 0).init(dynamic, &device).batch(&[2, 0], 5);
    assert_eq!(batch.x.dims(), [2, 1, 32, 32]);
    assert_eq!(batch.captions, vec!["a photo of a coat".to_string(), "a photo of a t-shirt/top".to_string()]);
}

#[test]
fn flips_are_reproducible_and_keep_captions_true() {
    let device = dddit_core::testing::device();
    let shapes = Arc::new(ShapesConfig { size: 32, len: 64, seed: 4, ..Default::default() }.init().unwrap());
    let a = BatcherConfig::new(true, 17).init(shapes.clone(), &device);
    let b = BatcherConfig::new(true, 17).init(shapes.clone(), &device);
    let indices: Vec<usize> = (0..64).collect();
    let flips: Vec<bool> = indices.iter().map(|&i| a.is_flipped(3, i)).collect();
    let n = flips.iter().filter(|&&f| f).count();
    assert!((16..=48).contains(&n), "{n} of 64 flipped");
    assert_eq!(flips, indices.iter().map(|&i| b.is_flipped(3, i)).collect::<Vec<_>>());
    assert_ne!(flips, indices.iter().map(|&i| a.is_flipped(4, i)).collect::<Vec<_>>(), "flips change per epoch");
    let s1 = a.samples(&indices, 3);
    assert_eq!(s1, b.samples(&indices, 3));
    for (&i, s) in indices.iter().zip(&s1) {
        let orig = shapes.get(i);
        if flips[i] {
            let mut m = orig.clone();
            m.hflip(3, 32);
            assert_eq!(s, &m);
            assert_eq!(s.complexity, orig.complexity);
            for (o, f) in orig.objects.iter().zip(&s.objects) {
                assert_eq!(f.cell, o.cell.mirrored());
                assert!(s.caption.contains(f.cell.phrase()));
            }
            // Pixel (y, x) of the mirror is (y, 31 − x) of the original.
            assert_eq!(s.image[5 * 32 + 2], orig.image[5 * 32 + 29]);
        } else {
            assert_eq!(s, &orig);
        }
    }
    let x1 = a.batch(&indices, 3).x.into_data().try_to_vec::<f32>().unwrap();
    let x2 = b.batch(&indices, 3).x.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(x1, x2);
    // Some flipped sample has an object off the middle column, so the mirror did move a cell.
    assert!(s1.iter().zip(&flips).filter(|(_, &f)| f).flat_map(|(s, _)| s.objects.iter()).any(|o| o.cell.col() != 1));
    let o = shapes.get(0).objects[0];
    assert_eq!(Cell::at(o.cell.row(), 2 - o.cell.col()), o.cell.mirrored());
}

#[test]
fn batch_order_is_a_deterministic_permutation() {
    let cfg = BatchOrderConfig::new(32, 5);
    let order = cfg.init(1000).unwrap();
    let e0 = order.epoch_order(0);
    let mut sorted = e0.clone();
    sorted.sort();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    assert_ne!(e0, (0..1000).collect::<Vec<_>>());
    assert_eq!(e0, cfg.init(1000).unwrap().epoch_order(0));
    assert_ne!(e0, order.epoch_order(1));
    assert_ne!(e0, BatchOrderConfig::new(32, 6).init(1000).unwrap().epoch_order(0));
    // The batches of an epoch are its order, cut in pieces.
    let mut it = cfg.init(1000).unwrap();
    let cat: Vec<usize> = it.by_ref().take(order.batches_per_epoch()).flat_map(|b| b.indices).collect();
    assert_eq!(cat, e0);
    assert_eq!(it.position(), Position { epoch: 1, offset: 0 });
}

#[test]
fn batch_order_resumes_exactly() {
    let cfg = BatchOrderConfig::new(7, 99);
    let full: Vec<_> = cfg.init(50).unwrap().take(40).collect();
    for stop in [0, 1, 5, 7, 8, 13, 39] {
        let mut run = cfg.init(50).unwrap();
        for _ in 0..stop {
            run.next_batch();
        }
        let saved = run.position();
        let resumed = cfg.init(50).unwrap().with_position(saved).unwrap();
        let rest: Vec<_> = resumed.take(40 - stop).collect();
        assert_eq!(rest, full[stop..].to_vec(), "stopped after {stop} batches at {saved:?}");
    }
    // A position at the very end of an epoch continues with the next epoch.
    let mut o = cfg.init(50).unwrap();
    o.set_position(Position { epoch: 2, offset: 50 }).unwrap();
    assert_eq!(o.position(), Position { epoch: 3, offset: 0 });
    assert!(o.set_position(Position { epoch: 0, offset: 51 }).is_err());
}
