//! Helpers shared by the integration tests: where the real data lives, temporary folders.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared test-data folder (`GLIOEDGE_TEST_DATA`, else `../shared/data` beside the repo).
///
/// Missing data is a failure in CI (`CI=true`); on a developer machine without the data the
/// test prints why it did nothing and returns `None`.
pub fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GLIOEDGE_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "test data not found at {} (set GLIOEDGE_TEST_DATA); CI must have it",
            dir.display()
        );
    }
    eprintln!(
        "test data not found at {}; set GLIOEDGE_TEST_DATA to run this test",
        dir.display()
    );
    None
}

/// The path of the built `glioedge` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_glioedge"))
}
