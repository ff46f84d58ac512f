//! `cargo xtask layers` on the repository's own `honeyhive/src`: the tree
//! keeps its layers (the check itself is tested on fixture trees in
//! `src/layers.rs`).

use std::process::Command;

#[test]
fn the_crate_keeps_its_layers() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("layers")
        .output()
        .expect("xtask runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("layers: every import"), "{stdout}");
}
