//! User xattrs across a rotation: names and values re-encrypted under the new keys, copied onto
//! a new file or converted in place on an entry that keeps its inode.

use std::ffi::OsStr;
use std::fs::File;

use super::Rotation;
use crate::backing::{self, Dir};
use crate::error::Result;

impl Rotation<'_> {
    /// The user xattrs of entry `from` of `dir`, re-encrypted onto `target`; xattrs that do not
    /// decrypt under the old keys (veilfs never wrote them) are not copied.
    pub(super) fn copy_xattrs(&self, dir: &Dir, from: &str, target: &File) -> Result<()> {
        let name = Some(OsStr::new(from));
        for attr in dir.list_xattrs(name)? {
            let Some(plain) = self.old_xattr(dir, name, &attr) else {
                continue;
            };
            let (new_name, sealed) = self.new_xattr(&plain);
            backing::set_file_xattr(target, &new_name, &sealed)?;
        }
        Ok(())
    }

    /// Re-encrypts the user xattrs of entry `name` of `dir` (or of `dir` itself) in place:
    /// each new one set before its old one is removed, so a crash loses none.
    pub(super) fn convert_xattrs(&self, dir: &Dir, name: Option<&str>) -> Result<()> {
        let name = name.map(OsStr::new);
        for attr in dir.list_xattrs(name)? {
            let Some(plain) = self.old_xattr(dir, name, &attr) else {
                continue;
            };
            let (new_name, sealed) = self.new_xattr(&plain);
            dir.set_xattr(name, &new_name, &sealed, 0)?;
            dir.remove_xattr(name, attr.to_str().expect("checked by old_xattr"))?;
        }
        Ok(())
    }

    /// The plaintext (name, value) of backing xattr `attr`, if the old keys wrote it.
    fn old_xattr(
        &self,
        dir: &Dir,
        name: Option<&OsStr>,
        attr: &OsStr,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        let encrypted = attr.to_str()?.strip_prefix("user.")?;
        let names = self.from.names();
        let plain_name = names.decrypt_xattr_name(encrypted).ok()?;
        let sealed = dir.get_xattr(name, attr.to_str()?).ok()?;
        let value = names.decrypt_xattr_value(encrypted, &sealed).ok()?;
        Some((plain_name, value))
    }

    fn new_xattr(&self, (name, value): &(Vec<u8>, Vec<u8>)) -> (String, Vec<u8>) {
        let names = self.to.names();
        let encrypted = names.encrypt_xattr_name(name);
        let sealed = names.encrypt_xattr_value(&encrypted, value);
        (format!("user.{encrypted}"), sealed)
    }
}
