//! What the tests of `veilfs rekey` share (tests/rekey.rs, tests/rekey_hostile.rs): the
//! commands; the tree comparison is [`super::tree`]'s.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::{run, veilfs, xattr, TestVault};

pub const NEW_PASSWORD: &str = "a new password after the leak";

pub fn setxattr(path: &Path, name: &str, value: &str) {
    xattr::set(path, name, value.as_bytes(), 0).unwrap();
}

pub fn write_passfile(dir: &Path, name: &str, password: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("{password}\n")).unwrap();
    path
}

pub fn config_text(vault: &TestVault) -> String {
    fs::read_to_string(vault.backing_path().join("veilfs.conf")).unwrap()
}

pub fn rekey(vault: &TestVault, passfile: &Path, new: &Path) -> Command {
    let mut cmd = veilfs();
    cmd.arg("rekey")
        .arg("--passfile")
        .arg(passfile)
        .arg("--new-passfile")
        .arg(new)
        .arg(vault.backing_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

pub fn mount_with_password(vault: &TestVault, passfile: &Path) -> Output {
    run(veilfs()
        .arg("mount")
        .arg("--passfile")
        .arg(passfile)
        .arg(vault.backing_path())
        .arg(vault.mount_path()))
}
