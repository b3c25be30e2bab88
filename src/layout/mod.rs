//! The backing directory's layout ("Backing directory" in format.md): which entry names are
//! reserved, where directory IVs live, how long names are stored, and file contents.

pub mod conflict;
pub mod diriv;
pub mod file;
pub mod lend;
pub mod longname;
pub mod moves;

/// Per-directory IV file, in every backing directory including the root.
pub const DIRIV_NAME: &str = "veilfs.diriv";
/// A new IV file on its way to replacing `veilfs.diriv` ([`diriv::replace`], [`diriv::rewrite`]).
pub const DIRIV_TMP_NAME: &str = "veilfs.diriv.tmp";
/// The record of a directory rename in progress, in the moved directory ([`moves`]).
pub const MOVE_NAME: &str = "veilfs.move";
/// A file or symlink being re-encrypted by a key rotation, before it takes its new name
/// (format.md, "Key rotation").
pub const REKEY_TMP_NAME: &str = "veilfs.rekey.tmp";
/// At the root while a key rotation runs: where the hard-linked files it re-encrypted went.
pub const REKEY_LINKS_NAME: &str = "veilfs.rekey.links";
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
    /// Prefixes are matched in any case: no encoded name contains a '.', so a name like
    /// `VEILFS.LONGNAME.<hash>` (what a case-insensitive sync target may turn a long name into)
    /// is still a long name, never an encoded one.
    pub fn classify(name: &'a str) -> Self {
        match strip_prefix_ignore_case(name, longname::LONGNAME_PREFIX) {
            Some(hash) if !ends_with_ignore_case(hash, longname::SIDECAR_SUFFIX) => {
                EntryName::Long(name)
            }
            _ if strip_prefix_ignore_case(name, RESERVED_PREFIX).is_some() => EntryName::Reserved,
            _ => EntryName::Short(name),
        }
    }
}

/// `name` without `prefix`, compared ignoring ASCII case.
pub fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
}

/// Whether `name` ends with `suffix`, ignoring ASCII case.
pub fn ends_with_ignore_case(name: &str, suffix: &str) -> bool {
    name.len() >= suffix.len()
        && name.is_char_boundary(name.len() - suffix.len())
        && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_are_recognised() {
        assert_eq!(EntryName::classify("veilfs.conf"), EntryName::Reserved);
        assert_eq!(EntryName::classify("veilfs.diriv"), EntryName::Reserved);
        assert_eq!(
            EntryName::classify("veilfs.longname.abc.name"),
            EntryName::Reserved
        );
        assert_eq!(
            EntryName::classify("veilfs.longname.abc"),
            EntryName::Long("veilfs.longname.abc")
        );
        assert_eq!(EntryName::classify("AbC-_9"), EntryName::Short("AbC-_9"));
        // What a case-insensitive round trip may leave.
        assert_eq!(EntryName::classify("VEILFS.DIRIV"), EntryName::Reserved);
        assert_eq!(
            EntryName::classify("VEILFS.LONGNAME.ABC.NAME"),
            EntryName::Reserved
        );
        assert_eq!(
            EntryName::classify("VEILFS.LONGNAME.ABC"),
            EntryName::Long("VEILFS.LONGNAME.ABC")
        );
    }
}
