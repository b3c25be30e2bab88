//! The mount table of this process, from `/proc/self/mountinfo` (mountinfo(5)): what is mounted
//! where, and whether a path is veilfs's own mount of a vault.
//!
//! The one reader of that file for the command line (mount's pre-flight checks, the signal and
//! idle threads, `umount`, the vault lock's message) and for the tests. Where there is no such
//! file (macOS), [`read`] fails and each caller decides what that means.
//!
//! A mount veilfs makes is a FUSE mount whose source is the canonical path of its backing
//! directory (fuser's `fsname`); [`MountEntry::is_veilfs_of`] is that test, and
//! [`is_veilfs_mount_of`] asks it of the topmost mount at a path.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where the kernel shows this process's mount table.
pub const MOUNTINFO_PATH: &str = "/proc/self/mountinfo";

/// One line of the mount table: the fields veilfs uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted (field 5).
    pub mountpoint: PathBuf,
    /// The per-mount options, as the kernel writes them: `rw,nosuid,nodev,relatime` (field 6).
    pub options: String,
    /// The file system type: `ext4`, `fuse`, `fuse.veilfs` (the field after the `-`).
    pub fstype: String,
    /// What is mounted: a device, or for veilfs the backing directory (the next field).
    pub source: String,
}

impl MountEntry {
    /// Whether this is a FUSE file system (`fuse`, `fuse.SUBTYPE` or `fuseblk`; not `fusectl`,
    /// the FUSE control file system).
    pub fn is_fuse(&self) -> bool {
        self.fstype == "fuse" || self.fstype.starts_with("fuse.") || self.fstype == "fuseblk"
    }

    /// Whether this is a veilfs mount of the backing directory `source` (its canonical path, as
    /// the mount was given it).
    pub fn is_veilfs_of(&self, source: &str) -> bool {
        self.is_fuse() && self.source == source
    }
}

/// Parses mountinfo(5): `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE
/// SUPEROPTIONS`, with space, tab, newline and backslash escaped as `\ooo`. Lines that do not
/// have that shape are skipped.
pub fn parse(text: &[u8]) -> Vec<MountEntry> {
    let mut entries = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        // The optional fields end at the first lone `-`, which cannot come before field 7.
        let Some(dash) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        if dash < 6 || fields.len() < dash + 3 {
            continue;
        }
        let text = |field: &[u8]| String::from_utf8_lossy(&unescape_octal(field)).into_owned();
        entries.push(MountEntry {
            mountpoint: PathBuf::from(OsStr::from_bytes(&unescape_octal(fields[4]))),
            options: text(fields[5]),
            fstype: text(fields[dash + 1]),
            source: text(fields[dash + 2]),
        });
    }
    entries
}

/// The mount table of this process, in mount order (a later mount hides an earlier one at the
/// same place).
pub fn read() -> io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read(MOUNTINFO_PATH)?))
}

/// The topmost mount whose mount point is exactly `path` (absolute and canonical, as the table
/// has it), if any.
pub fn topmost_at(path: &Path) -> io::Result<Option<MountEntry>> {
    Ok(topmost_in(read()?, path))
}

fn topmost_in(entries: Vec<MountEntry>, path: &Path) -> Option<MountEntry> {
    entries
        .into_iter()
        .rev()
        .find(|entry| entry.mountpoint == path)
}

/// Whether the topmost mount at `path` is a veilfs mount of `source` (see
/// [`MountEntry::is_veilfs_of`]): false once it is unmounted, or when something else was mounted
/// on top of it.
pub fn is_veilfs_mount_of(path: &Path, source: &str) -> io::Result<bool> {
    Ok(topmost_at(path)?.is_some_and(|entry| entry.is_veilfs_of(source)))
}

/// Undoes the kernel's `\ooo` escapes; a backslash not followed by three octal digits that make
/// a byte stays as it is.
fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if let Some(byte) = field
            .get(i + 1..i + 4)
            .filter(|_| field[i] == b'\\')
            .and_then(octal)
        {
            out.push(byte);
            i += 4;
            continue;
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// Three octal digits as a byte (at most `\377`).
fn octal(digits: &[u8]) -> Option<u8> {
    let value = digits.iter().try_fold(0u32, |acc, &b| {
        (b'0'..=b'7')
            .contains(&b)
            .then(|| acc * 8 + u32::from(b - b'0'))
    })?;
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[u8] = b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
        90 22 0:50 / /tmp/a\\040b rw,nosuid,nodev shared:2 master:3 - fuse /srv/c\\134d rw,user_id=0\n\
        91 22 0:51 / /mnt/v rw,nosuid - fuse.veilfs /srv/vault rw\n\
        92 91 0:52 / /mnt/v ro - tmpfs tmpfs rw\n";

    #[test]
    fn escapes_and_optional_fields() {
        let entries = parse(TABLE);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].fstype, "ext4");
        assert_eq!(entries[0].options, "rw,relatime");
        assert_eq!(entries[1].mountpoint, Path::new("/tmp/a b"));
        assert_eq!(entries[1].options, "rw,nosuid,nodev");
        assert_eq!(entries[1].fstype, "fuse");
        assert_eq!(entries[1].source, "/srv/c\\d");
        // No optional fields at all.
        assert_eq!(entries[2].fstype, "fuse.veilfs");
        assert_eq!(entries[2].source, "/srv/vault");
    }

    #[test]
    fn odd_escapes_and_short_lines() {
        assert_eq!(unescape_octal(b"a\\134"), b"a\\");
        // Not three octal digits, or more than a byte: left as written.
        assert_eq!(unescape_octal(b"a\\08x\\400\\12"), b"a\\08x\\400\\12");
        assert!(parse(b"").is_empty());
        assert!(parse(b"22 1 8:1 / / rw - ext4\n1 2 3 - 5 6 - x y z\n").is_empty());
    }

    #[test]
    fn the_topmost_mount_of_a_path_counts() {
        let entries = parse(TABLE);
        let top = topmost_in(entries.clone(), Path::new("/mnt/v")).unwrap();
        assert_eq!(top.fstype, "tmpfs");
        assert!(!top.is_veilfs_of("/srv/vault"));
        assert!(entries[2].is_veilfs_of("/srv/vault"));
        assert!(!entries[2].is_veilfs_of("/srv/other"));
        assert!(topmost_in(entries, Path::new("/mnt")).is_none());
    }

    #[test]
    fn only_fuse_mounts_are_fuse() {
        let entry = |fstype: &str| MountEntry {
            mountpoint: "/m".into(),
            options: "rw".into(),
            fstype: fstype.into(),
            source: "s".into(),
        };
        assert!(entry("fuse").is_fuse());
        assert!(entry("fuse.veilfs").is_fuse());
        assert!(entry("fuseblk").is_fuse());
        assert!(!entry("ext4").is_fuse());
        assert!(!entry("fusectl").is_fuse());
    }

    #[test]
    fn the_root_is_a_mount_point() {
        assert!(topmost_at(Path::new("/")).unwrap().is_some());
    }
}
