//! The attacks that work and the leaks that exist, one test each: what docs/threat-model.md's
//! "Not protected" list says, shown as a peer with write access to the backing directory (and
//! no key) would do it, through the core (no mount needed to show any of them).

mod corevault;

use std::fs;
use std::path::Path;

use corevault::CoreVault;
use veilfs::crypto::content::HEADER_LEN;
use veilfs::crypto::names::NameEncoding;
use veilfs::layout::{diriv, DIRIV_NAME};

/// Files of 1 to 15 bytes are plaintext XOR a keystream: flipping a ciphertext bit flips the
/// same plaintext bit (format.md, "Short files"; format-v2.md, "Short files").
#[test]
fn a_short_file_is_malleable_bit_by_bit() {
    let v = CoreVault::new(NameEncoding::Base64Url);
    let path = v.write("pay", b"pay=0100");
    let mut bytes = fs::read(&path).unwrap();
    bytes[HEADER_LEN as usize + 4] ^= b'0' ^ b'9';
    fs::write(&path, bytes).unwrap();
    assert_eq!(v.read("pay"), b"pay=9100");
}

/// A header copied from another file of the vault brings that file's key along: its sectors,
/// copied to the same positions, then read as its plaintext (format.md, "File contents").
#[test]
fn a_spliced_header_carries_sectors_between_files() {
    let v = CoreVault::new(NameEncoding::Base64Url);
    let secret = vec![b's'; 8192];
    let victim = vec![b'v'; 8192];
    let from = v.write("secret", &secret);
    let to = v.write("victim", &victim);
    let source = fs::read(&from).unwrap();
    let mut target = fs::read(&to).unwrap();
    let header = HEADER_LEN as usize;
    target[..header].copy_from_slice(&source[..header]);
    target[header + 4096..].copy_from_slice(&source[header + 4096..]);
    fs::write(&to, target).unwrap();
    let read = v.read("victim");
    assert_eq!(
        &read[4096..],
        &secret[4096..],
        "the spliced sector reads as plaintext"
    );
    assert_ne!(
        &read[..4096],
        &victim[..4096],
        "the victim's own sector is garbage now"
    );
}

/// Extended attribute names are encrypted with one key and no per-file input: the same name on
/// any two files of the vault has the same backing name (format.md, "Extended attributes").
#[test]
fn xattr_names_are_the_same_across_the_vault() {
    let v = CoreVault::new(NameEncoding::Base64Url);
    let names = v.vault.names();
    assert_eq!(
        names.encrypt_xattr_name(b"user.origin"),
        names.encrypt_xattr_name(b"user.origin")
    );
}

/// `rmdir a; mkdir a` gives the new `a` the old one's IV, so names in both repeat: the
/// derivation cannot tell "later" from "on another device offline" (format-v2.md, "Deleted and
/// re-created").
#[test]
fn a_re_created_directory_reuses_its_iv() {
    let v = CoreVault::new(NameEncoding::Base64Url);
    let first = v.mkdir("a");
    let iv = fs::read(first.join(DIRIV_NAME)).unwrap();
    let name = v.write("a/notes", b"1");
    fs::remove_file(&name).unwrap();
    fs::remove_file(first.join(DIRIV_NAME)).unwrap();
    fs::remove_dir(&first).unwrap();
    let second = v.mkdir("a");
    assert_eq!(fs::read(second.join(DIRIV_NAME)).unwrap(), iv);
    assert_eq!(v.write("a/notes", b"2"), name);
    assert_eq!(
        diriv::read(&v.dir(&second)).unwrap(),
        v.vault.open_plain_dir(Path::new("a")).unwrap().1
    );
}
