//! Hard links across a rotation: the link journal (`veilfs.rekey.links`) that records each
//! hard-linked file re-encrypted, so that its other names, in this run or the next after a crash,
//! become links to the new file instead of copies.

use std::io::{self, BufReader, Read, Write};

use nix::fcntl::OFlag;

use super::{named, remove_planted, Rotation, TMP_MODE};
use crate::backing::{self, Dir, FileKind};
use crate::crypto::records::LinkRecord;
use crate::error::{Error, Result};
use crate::layout::longname::BackingName;
use crate::layout::REKEY_LINKS_NAME;

/// Longest link record read back: far beyond a real one (a path of thousands of long names),
/// short enough that a planted length makes no run allocate gigabytes.
const MAX_LINK_RECORD: u32 = 4 << 20;

impl Rotation<'_> {
    /// The link records an interrupted run left in the journal, read up to the first that is
    /// cut short by a crash or does not authenticate (planted), where the journal is cut so
    /// that this run's records follow the good ones. Anything but a regular file of one name
    /// there was planted: it goes.
    pub(super) fn load_links(&mut self, root: &Dir) -> Result<()> {
        let path = root.display_path(REKEY_LINKS_NAME);
        let journal = match root.open_file_stat(REKEY_LINKS_NAME, OFlag::O_RDWR, 0) {
            // A second name of some file (outside the vault, perhaps): it is neither read nor
            // cut, only its name here goes.
            Ok((_, stat)) if stat.st_nlink != 1 => {
                tracing::warn!(
                    "removing {}: it has {} names",
                    path.display(),
                    stat.st_nlink
                );
                return Ok(root.unlink(REKEY_LINKS_NAME)?);
            }
            Ok((file, _)) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if root
                    .stat(REKEY_LINKS_NAME)
                    .is_ok_and(|stat| FileKind::of(&stat) != FileKind::File) =>
            {
                tracing::warn!("removing {}: {e}", path.display());
                return remove_planted(root, REKEY_LINKS_NAME).map_err(Error::from);
            }
            Err(e) => return Err(named(&path, e.into())),
        };
        let mut reader = BufReader::new(&journal);
        let mut good = 0u64;
        loop {
            let mut len = [0; 4];
            if reader.read_exact(&mut len).is_err() {
                break;
            }
            let len = u32::from_be_bytes(len);
            if len > MAX_LINK_RECORD {
                break;
            }
            let mut sealed = Vec::new();
            (&mut reader)
                .take(len.into())
                .read_to_end(&mut sealed)
                .map_err(|e| named(&path, e.into()))?;
            if sealed.len() != len as usize {
                break;
            }
            let Ok(record) = LinkRecord::open(self.to.record_key(), &self.to.root_iv().0, &sealed)
            else {
                break;
            };
            self.links
                .insert((record.old_inode, record.old_header), record.new_path);
            good += 4 + u64::from(len);
        }
        let size = journal
            .metadata()
            .map_err(|e| named(&path, e.into()))?
            .len();
        if good < size {
            tracing::warn!(
                "{}: kept its first {good} of {size} bytes (the rest was cut short by a crash, \
                 or does not authenticate)",
                path.display()
            );
            journal.set_len(good).map_err(|e| named(&path, e.into()))?;
        }
        Ok(())
    }

    /// Appends `record` to the link journal, durably: before the old name it replaces goes.
    pub(super) fn journal_link(&self, record: &LinkRecord) -> Result<()> {
        let sealed = record.seal(self.to.record_key(), &self.to.root_iv().0);
        let mut entry = (sealed.len() as u32).to_be_bytes().to_vec();
        entry.extend_from_slice(&sealed);
        let mut journal = self.to.root().open_file(
            REKEY_LINKS_NAME,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND,
            TMP_MODE,
        )?;
        journal.write_all(&entry)?;
        journal.sync_data()?;
        Ok(())
    }

    /// Makes `backing` in `dir` a link to the regular file at `new_path` (backing names from
    /// the root), replacing what a crash left under that name.
    pub(super) fn link_to(
        &self,
        new_path: &[String],
        dir: &Dir,
        backing: &BackingName,
    ) -> Result<()> {
        let Some((file, dirs)) = new_path.split_last() else {
            return Err(Error::Io(io::ErrorKind::NotFound.into()));
        };
        let first_dir = self.to.root().walk(dirs)?;
        let kind = FileKind::of(&first_dir.stat(file)?);
        if kind != FileKind::File {
            return Err(
                backing::wrong_type(&first_dir.display_path(file), kind, "a regular file").into(),
            );
        }
        self.to.create_entry(dir, backing, |to| {
            dir.unlink_if_present(to)?;
            first_dir.link(file, dir, to)
        })
    }
}
