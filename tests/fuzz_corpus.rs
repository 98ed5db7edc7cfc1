//! The fuzz targets' kept corpus (`fuzz/corpus/<target>/`), replayed through the same bodies
//! the fuzzers run (`showfloor::fuzzing`): every input the fuzzers found interesting, and the
//! seeds, must still pass on every `cargo test`. An empty or missing corpus fails: the replay
//! never passes for want of inputs.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus of {target} at {}: {e}", dir.display()));
    let mut n = 0;
    for e in entries {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| body(&data)) {
            std::panic::resume_unwind(Box::new(format!(
                "{target}: {} fails: {:?}",
                path.display(),
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or(panic.downcast_ref::<&str>().copied())
            )));
        }
        n += 1;
    }
    assert!(n > 0, "the corpus of {target} is empty");
    println!("{target}: {n} inputs replayed");
}

#[test]
fn client_message_corpus() {
    replay("client_message", showfloor::fuzzing::client_messages);
}

#[test]
fn viewer_token_corpus() {
    replay("viewer_token", showfloor::fuzzing::viewer_token);
}

#[test]
fn media_packets_corpus() {
    replay("media_packets", showfloor::fuzzing::media);
}

#[test]
fn registration_input_corpus() {
    replay("registration_input", showfloor::fuzzing::registration);
}

#[test]
fn catalog_csv_corpus() {
    replay("catalog_csv", showfloor::fuzzing::catalog);
}
