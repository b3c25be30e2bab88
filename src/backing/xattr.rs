//! Extended attributes of backing entries, of a directory itself and of an open file, through
//! the directory handle (the FFI is in `fs::sys`).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use super::{check_component, Dir};
use crate::fs::sys;

impl Dir {
    /// The extended attribute `attr` of entry `name` (or of this directory, for `None`).
    pub fn get_xattr(&self, name: Option<&OsStr>, attr: &str) -> io::Result<Vec<u8>> {
        sys::get_xattr_at(
            self.fd.as_fd(),
            name.map(check_component).transpose()?,
            attr,
        )
    }

    pub fn set_xattr(
        &self,
        name: Option<&OsStr>,
        attr: &str,
        value: &[u8],
        flags: i32,
    ) -> io::Result<()> {
        sys::set_xattr_at(
            self.fd.as_fd(),
            name.map(check_component).transpose()?,
            attr,
            value,
            flags,
        )
    }

    pub fn list_xattrs(&self, name: Option<&OsStr>) -> io::Result<Vec<OsString>> {
        sys::list_xattrs_at(self.fd.as_fd(), name.map(check_component).transpose()?)
    }

    pub fn remove_xattr(&self, name: Option<&OsStr>, attr: &str) -> io::Result<()> {
        sys::remove_xattr_at(
            self.fd.as_fd(),
            name.map(check_component).transpose()?,
            attr,
        )
    }
}

/// Sets extended attribute `attr` of the open file `file`.
pub fn set_file_xattr(file: &File, attr: &str, value: &[u8]) -> io::Result<()> {
    sys::set_xattr_at(file.as_fd(), None, attr, value, 0)
}
