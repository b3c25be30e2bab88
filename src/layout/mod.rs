//! The backing directory's layout ("Backing directory" in format.md): which entry names are
//! reserved, where directory IVs live, how long names are stored, and file contents.

pub mod diriv;
pub mod file;
pub mod longname;

/// Per-directory IV file, in every backing directory including the root.
pub const DIRIV_NAME: &str = "veilfs.diriv";
/// Prefix shared by every name veilfs reserves; no encoded name contains a '.', so none
/// can start with it.
pub const RESERVED_PREFIX: &str = "veilfs.";

/// What a backing directory entry is, judged by its name alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryName<'a> {
    /// `veilfs.conf`, `veilfs.diriv`, a sidecar, or another name veilfs reserves: not shown.
    Reserved,
    /// `veilfs.longname.<hash>`: the encoded name is in the sidecar.
    Long(&'a str),
    /// Anything else should be an encoded name.
    Short(&'a str),
}

impl<'a> EntryName<'a> {
    pub fn classify(name: &'a str) -> Self {
        match name.strip_prefix(longname::LONGNAME_PREFIX) {
            Some(hash) if !hash.ends_with(longname::SIDECAR_SUFFIX) => EntryName::Long(name),
            _ if name.starts_with(RESERVED_PREFIX) => EntryName::Reserved,
            _ => EntryName::Short(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_are_recognised() {
        assert_eq!(EntryName::classify("veilfs.conf"), EntryName::Reserved);
        assert_eq!(EntryName::classify("veilfs.diriv"), EntryName::Reserved);
        assert_eq!(EntryName::classify("veilfs.longname.abc.name"), EntryName::Reserved);
        assert_eq!(EntryName::classify("veilfs.longname.abc"), EntryName::Long("veilfs.longname.abc"));
        assert_eq!(EntryName::classify("AbC-_9"), EntryName::Short("AbC-_9"));
    }
}
