//! Extended attributes, as a table of cases: each row an xattr call, run on the mount and on the
//! plain directory, whose results (errno included) must be the same.

use std::path::Path;

use nix::errno::Errno;

use crate::common::{io_res, xattr, Res};
use crate::harness::Pair;
use crate::ops::{link, mkdir, pattern, rename, symlink, write_file};

/// One xattr call on a path.
#[derive(Debug)]
enum Call {
    Set(&'static str, Vec<u8>, i32),
    Get(&'static str),
    /// Into a buffer of this many bytes.
    GetInto(&'static str, usize),
    /// With no buffer, which asks for the value's size.
    Size(&'static str),
    /// `getxattr(2)`: following a symlink.
    GetFollowing(&'static str),
    /// The `user.` names (a plain directory may carry `security.` labels).
    List,
    Remove(&'static str),
}

/// What a call gave back.
#[derive(Debug, PartialEq)]
enum Outcome {
    Done,
    Value(Vec<u8>),
    Size(usize),
    Names(Vec<String>),
}

impl Call {
    fn run(&self, path: &Path) -> Res<Outcome> {
        io_res(match self {
            Call::Set(name, value, flags) => {
                xattr::set(path, name, value, *flags).map(|()| Outcome::Done)
            }
            Call::Get(name) => xattr::get(path, name).map(Outcome::Value),
            Call::GetInto(name, size) => xattr::get_into(path, name, *size).map(Outcome::Value),
            Call::Size(name) => xattr::size(path, name).map(Outcome::Size),
            Call::GetFollowing(name) => xattr::get_following(path, name).map(Outcome::Value),
            Call::List => xattr::user_names(path).map(Outcome::Names),
            Call::Remove(name) => xattr::remove(path, name).map(|()| Outcome::Done),
        })
    }
}

/// Whether the plain directory must succeed at a row, or the mount need only give the same
/// result as it (the rows that fail).
#[derive(Clone, Copy)]
enum Expect {
    Succeeds,
    Same,
}

/// A row: what it checks, what the plain directory must do, the call.
type Case = (&'static str, Expect, Call);

/// The rows run on a file and on a directory, in order: each sees what the rows before it did.
fn cases_on_an_inode() -> Vec<Case> {
    use Call::*;
    use Expect::*;
    vec![
        ("list empty", Same, List),
        (
            "set user.one",
            Succeeds,
            Set("user.one", b"value one".to_vec(), 0),
        ),
        ("set user.empty", Succeeds, Set("user.empty", Vec::new(), 0)),
        (
            "set a binary value",
            Succeeds,
            Set("user.bin", vec![0, 1, 2, 255, 0], 0),
        ),
        (
            "set a 1000-byte value",
            Succeeds,
            Set("user.big", pattern(1000, 3), 0),
        ),
        (
            "set a unicode name",
            Succeeds,
            Set("user.ünï cødé", b"u".to_vec(), 0),
        ),
        ("get user.one", Same, Get("user.one")),
        ("get user.empty", Same, Get("user.empty")),
        ("get user.bin", Same, Get("user.bin")),
        ("get user.big", Same, Get("user.big")),
        ("get unicode", Same, Get("user.ünï cødé")),
        ("size of user.big", Same, Size("user.big")),
        ("too small a buffer", Same, GetInto("user.big", 10)),
        ("list", Same, List),
        ("get missing", Same, Get("user.missing")),
        (
            "XATTR_CREATE on an existing name",
            Same,
            Set("user.one", b"new".to_vec(), libc::XATTR_CREATE),
        ),
        (
            "XATTR_REPLACE on a missing name",
            Same,
            Set("user.missing", b"new".to_vec(), libc::XATTR_REPLACE),
        ),
        (
            "XATTR_REPLACE",
            Succeeds,
            Set("user.one", b"replaced".to_vec(), libc::XATTR_REPLACE),
        ),
        ("get replaced", Same, Get("user.one")),
        (
            "overwrite",
            Succeeds,
            Set("user.one", b"overwritten, longer".to_vec(), 0),
        ),
        ("get overwritten", Same, Get("user.one")),
        ("remove", Succeeds, Remove("user.one")),
        ("remove missing", Same, Remove("user.one")),
        ("get removed", Same, Get("user.one")),
        ("list after remove", Same, List),
    ]
}

/// Runs one row on path `rel` of both roots.
fn run_case(t: &Pair, rel: &str, (what, expect, call): &Case) {
    let what = format!("{rel}: {what}");
    let op = |root: &Path| call.run(&root.join(rel));
    match expect {
        Expect::Succeeds => drop(t.ok(&what, op)),
        Expect::Same => t.both(&what, op),
    }
}

#[test]
fn user_xattrs() {
    use Call::*;
    use Expect::*;
    let t = Pair::new();
    t.ok("write f", |r| write_file(r, "f", b"x"));
    t.ok("mkdir d", |r| mkdir(r, "d"));
    t.ok("symlink l", |r| symlink(r, "f", "l"));
    for rel in ["f", "d"] {
        for case in &cases_on_an_inode() {
            run_case(&t, rel, case);
        }
    }
    for (rel, case) in [
        // user.* on a symlink is refused by Linux (EPERM).
        (
            "l",
            (
                "set user.* on a symlink",
                Same,
                Set("user.x", b"1".to_vec(), 0),
            ),
        ),
        (
            "missing",
            ("get user.* of a missing file", Same, Get("user.x")),
        ),
        (
            "l",
            (
                "get user.* through a symlink (follows)",
                Same,
                GetFollowing("user.empty"),
            ),
        ),
    ] {
        run_case(&t, rel, &case);
    }
    // Xattrs follow the inode across rename and link.
    t.ok("rename f", |r| rename(r, "f", "f2"));
    run_case(&t, "f2", &("xattr after rename", Same, Get("user.bin")));
    t.ok("link f2", |r| link(r, "f2", "f3"));
    run_case(&t, "f3", &("xattr via a hard link", Same, Get("user.big")));

    // Namespaces other than user.* are refused on the mount; reading them says "not supported"
    // too, which `ls -l` and `cp -a` remember per device.
    let mut refused: Vec<(&str, Call)> = ["trusted.foo", "security.foo", "system.foo"]
        .into_iter()
        .map(|name| ("f2", Set(name, b"v".to_vec(), 0)))
        .collect();
    for name in [
        "trusted.foo",
        "security.selinux",
        "security.capability",
        "system.posix_acl_access",
        "system.posix_acl_default",
    ] {
        refused.extend([("f2", Get(name)), (".", Get(name))]);
    }
    for (rel, call) in &refused {
        let got = call.run(&t.mnt().join(rel));
        t.check(got == Err(Errno::EOPNOTSUPP), || {
            format!("{rel}: {call:?}: expected EOPNOTSUPP, got {got:?}")
        });
    }
    t.finish();
}
