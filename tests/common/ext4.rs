//! A vault whose backing directory is a small ext4 file system of its own, on a loop device:
//! nothing else creates files there, so which inode numbers it hands out is predictable (ext4
//! gives a freed number to the next entry made in its single block group), where on the
//! shared /tmp the tests running beside it may take them first. Needs root.

use std::fs;
use std::ops::Deref;
use std::process::Command;

use super::{assert_success, run, umount_or_detach, unmount_all, TestVault};

/// The image's size: one block group of 4 KiB blocks (32,768 blocks at most), so every
/// entry's number comes from the same bitmap, lowest free first.
const IMAGE_MIB: u64 = 64;

/// A [`TestVault`], not mounted, whose backing directory is a private ext4 file system.
/// Dropping it unmounts the vault, then the file system, then removes everything.
pub struct Ext4Vault {
    vault: TestVault,
}

impl Ext4Vault {
    pub fn unmounted() -> Ext4Vault {
        let vault = TestVault::unmounted();
        let backing = vault.backing_path().to_path_buf();
        // `veilfs init` wrote a few files there: keep them through the mount over it.
        let mut files = Vec::new();
        for entry in fs::read_dir(&backing).unwrap() {
            let entry = entry.unwrap();
            assert!(
                entry.file_type().unwrap().is_file(),
                "{entry:?} is not a file"
            );
            files.push((entry.file_name(), fs::read(entry.path()).unwrap()));
        }
        let mode = fs::metadata(&backing).unwrap().permissions();
        let image = vault.scratch().join("backing.ext4");
        fs::File::create(&image)
            .unwrap()
            .set_len(IMAGE_MIB << 20)
            .unwrap();
        assert_success(
            &run(Command::new("mkfs.ext4")
                .args(["-q", "-F", "-b", "4096"])
                .arg(&image)),
            "mkfs.ext4",
        );
        assert_success(
            &run(Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(&backing)),
            "mount -o loop (needs root and loop devices)",
        );
        let on_ext4 = Ext4Vault { vault };
        fs::remove_dir(backing.join("lost+found")).unwrap();
        fs::set_permissions(&backing, mode).unwrap();
        for (name, bytes) in files {
            fs::write(backing.join(name), bytes).unwrap();
        }
        on_ext4
    }
}

impl Deref for Ext4Vault {
    type Target = TestVault;

    fn deref(&self) -> &TestVault {
        &self.vault
    }
}

impl Drop for Ext4Vault {
    fn drop(&mut self) {
        unmount_all(self.vault.mount_path());
        // Detaching the loop device too: mount -o loop set it to clear itself.
        umount_or_detach(self.vault.backing_path());
    }
}
