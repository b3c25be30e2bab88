//! Extended attributes: `user.*` names and values encrypted into the backing entry's own
//! `user.*` attributes; other namespaces are not supported.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::error::Result;

use super::{errno, sys, VeilFs};

impl VeilFs {
    fn xattr_name(&self, name: &OsStr) -> Option<String> {
        let name = name.as_bytes().strip_prefix(b"user.")?;
        Some(format!(
            "user.{}",
            self.vault.names().encrypt_xattr_name(name)
        ))
    }

    pub(super) fn do_getxattr(&self, ino: u64, name: &OsStr) -> Result<Vec<u8>> {
        // Only user.* is stored. For the other namespaces "not supported" is the truth, and
        // it is what `ls -l` (SELinux labels, ACLs) and `cp -a` remember per device: they then
        // stop asking, where ENODATA would cost one round trip per file for every listing.
        let backing_name = self
            .xattr_name(name)
            .ok_or_else(|| errno(libc::EOPNOTSUPP))?;
        let located = self.locate_checked(ino)?;
        let sealed = located.dir.get_xattr(located.name(), &backing_name)?;
        let encrypted = &backing_name["user.".len()..];
        self.vault.names().decrypt_xattr_value(encrypted, &sealed)
    }

    pub(super) fn do_setxattr(
        &self,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> Result<()> {
        let backing_name = self
            .xattr_name(name)
            .ok_or_else(|| errno(libc::EOPNOTSUPP))?;
        let sealed = self
            .vault
            .names()
            .encrypt_xattr_value(&backing_name["user.".len()..], value);
        let located = self.locate_checked(ino)?;
        located
            .dir
            .set_xattr(located.name(), &backing_name, &sealed, flags)?;
        Ok(())
    }

    pub(super) fn do_listxattr(&self, ino: u64) -> Result<Vec<u8>> {
        let located = self.locate_checked(ino)?;
        let mut list = Vec::new();
        for backing_name in located.dir.list_xattrs(located.name())? {
            let Some(encrypted) = backing_name.to_str().and_then(|n| n.strip_prefix("user."))
            else {
                continue;
            };
            if let Ok(name) = self.vault.names().decrypt_xattr_name(encrypted) {
                list.extend_from_slice(b"user.");
                list.extend_from_slice(&name);
                list.push(0);
            }
        }
        Ok(list)
    }

    pub(super) fn do_removexattr(&self, ino: u64, name: &OsStr) -> Result<()> {
        let backing_name = self.xattr_name(name).ok_or_else(|| errno(sys::ENOATTR))?;
        let located = self.locate_checked(ino)?;
        located.dir.remove_xattr(located.name(), &backing_name)?;
        Ok(())
    }
}
