//! Recovery contacts: a trusted person who can help unlock a vault but cannot read it ("Recovery
//! contact" in format.md).
//!
//! A `contact` slot's wrapping key needs two halves: a 32-byte *share*, stored in the slot
//! encrypted to the contact's age recipient (an X25519 `age1...` key or an `ssh-ed25519` key),
//! and a *recovery passphrase* the user keeps (Argon2id). The contact alone (who can decrypt the
//! share) and the passphrase alone open nothing. To recover, the user sends the contact the
//! slot's encrypted share (`veilfs slot contact-request`), the contact decrypts it with veilfs
//! (`veilfs slot contact-answer`) or with the age CLI alone (`age -d -i KEY`), and sends back
//! the share as text, which the user gives with the passphrase.

use std::io::{BufReader, Read, Write};
use std::str::FromStr;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use zeroize::Zeroizing;

use crate::crypto::keys::{ContactShare, CONTACT_SHARE_LEN};
use crate::crypto::recovery::{format_contact_share, parse_contact_share};
use crate::error::{Error, Result};

/// The first line of a decrypted request: what the contact sees, and how to answer.
const SHARE_HEADER: &str = "veilfs recovery share";
/// Longest recipient accepted in a config (an ssh-ed25519 line with a comment fits).
pub const RECIPIENT_MAX_LEN: usize = 512;
/// Largest encrypted share accepted in a config (a few hundred bytes in practice).
pub const REQUEST_MAX_LEN: usize = 4096;

/// An age recipient a share can be encrypted to.
fn recipient(text: &str) -> std::result::Result<Box<dyn age::Recipient + Send>, String> {
    if let Ok(recipient) = age::x25519::Recipient::from_str(text) {
        return Ok(Box::new(recipient));
    }
    match age::ssh::Recipient::from_str(text) {
        Ok(recipient @ age::ssh::Recipient::SshEd25519(..)) => Ok(Box::new(recipient)),
        Ok(_) => Err("only ssh-ed25519 keys can be recovery contacts (not RSA)".into()),
        Err(_) => Err(format!(
            "{text:?} is neither an age recipient (age1...) nor an ssh-ed25519 public key"
        )),
    }
}

/// Whether `text` is a recipient [`encrypt_share`] accepts; the reason if not.
pub fn check_recipient(text: &str) -> std::result::Result<(), String> {
    if text.len() > RECIPIENT_MAX_LEN || text.chars().any(char::is_control) {
        return Err("a recipient is one line of at most 512 bytes".into());
    }
    recipient(text).map(drop)
}

/// The share encrypted to `recipient_text` (binary age), for the slot. The plaintext is text the
/// contact can read and send back: a header naming `vault` and `label`, and the share in groups.
pub fn encrypt_share(
    recipient_text: &str,
    share: &ContactShare,
    vault: &str,
    label: &str,
) -> std::result::Result<Vec<u8>, String> {
    let recipient = recipient(recipient_text)?;
    let text = Zeroizing::new(format!(
        "{SHARE_HEADER} for the vault {vault}, slot {label:?}.\nSend the next line back to \
         whoever asked, and only to them:\n{}\n",
        format_contact_share(share)
    ));
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&*recipient as _))
        .map_err(|e| format!("cannot encrypt to {recipient_text:?}: {e}"))?;
    let mut out = Vec::new();
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| format!("cannot encrypt the share: {e}"))?;
    writer
        .write_all(text.as_bytes())
        .and_then(|()| writer.finish().map(drop))
        .map_err(|e| format!("cannot encrypt the share: {e}"))?;
    Ok(out)
}

/// A request file: the slot's encrypted share in age's ASCII armor, which `age -d` reads.
pub fn armor(request: &[u8]) -> String {
    let mut out = Vec::new();
    let mut writer = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor)
        .expect("armoring into memory cannot fail");
    writer
        .write_all(request)
        .expect("armoring into memory cannot fail");
    writer.finish().expect("armoring into memory cannot fail");
    String::from_utf8(out).expect("armor is ASCII")
}

/// The contact's side: decrypts a request (armored or binary) with the identities in
/// `identity_file` (an age identity file, or an unencrypted OpenSSH ed25519 private key) and
/// returns the text to send back.
pub fn answer(request: &[u8], identity_file: &[u8]) -> std::result::Result<String, String> {
    let identities: Vec<Box<dyn age::Identity>> =
        match age::IdentityFile::from_buffer(BufReader::new(identity_file))
            .ok()
            .and_then(|file| file.into_identities().ok())
            .filter(|identities| !identities.is_empty())
        {
            Some(identities) => identities,
            None => match age::ssh::Identity::from_buffer(BufReader::new(identity_file), None) {
                Ok(age::ssh::Identity::Unencrypted(key)) => {
                    vec![Box::new(age::ssh::Identity::Unencrypted(key))]
                }
                Ok(age::ssh::Identity::Encrypted(_)) => {
                    return Err(
                        "this ssh key is protected by a passphrase: decrypt the request \
                                with 'age -d -i KEY REQUEST', which asks for it"
                            .into(),
                    )
                }
                _ => {
                    return Err(
                        "not an age identity file nor an OpenSSH ed25519 private key".into(),
                    )
                }
            },
        };
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(request))
        .map_err(|e| format!("not an age-encrypted request: {e}"))?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| &**i as &dyn age::Identity))
        .map_err(|e| format!("this key cannot open the request: {e}"))?;
    let mut text = Zeroizing::new(Vec::new());
    reader
        .by_ref()
        .take(4096)
        .read_to_end(&mut text)
        .map_err(|e| format!("cannot decrypt the request: {e}"))?;
    let text = std::str::from_utf8(&text).map_err(|_| "the request is not a veilfs share")?;
    if !text.starts_with(SHARE_HEADER) {
        return Err("the request is not a veilfs share".into());
    }
    Ok(text.to_owned())
}

/// The share in an answer: the contact may send the whole decrypted text or just its share line.
pub fn share_from_answer(text: &str) -> Result<ContactShare> {
    let candidates = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with(SHARE_HEADER))
        .filter(|line| !line.starts_with("Send the next line"));
    let mut last_error = None;
    for line in candidates {
        match parse_contact_share(line) {
            Ok(share) => return Ok(share),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        Error::RecoveryKeyFormat(format!(
            "no share in it (a line of {} characters in groups of 4)",
            ((CONTACT_SHARE_LEN + 4) * 8).div_ceil(5)
        ))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn a_share_travels_to_the_contact_and_back() {
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        let share = ContactShare::from_bytes([7; CONTACT_SHARE_LEN]);
        let request = encrypt_share(&recipient, &share, "QEFC", "alice").unwrap();
        let armored = armor(&request);
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        let key_file = format!("# test\n{}\n", identity.to_string().expose_secret());
        for form in [armored.as_bytes(), &request[..]] {
            let text = answer(form, key_file.as_bytes()).unwrap();
            assert!(text.contains("slot \"alice\""), "{text}");
            assert_eq!(
                share_from_answer(&text).unwrap().as_bytes(),
                share.as_bytes()
            );
        }
        // Another key cannot open it.
        let other = age::x25519::Identity::generate();
        let other_file = other.to_string().expose_secret().to_owned();
        assert!(answer(armored.as_bytes(), other_file.as_bytes()).is_err());
    }

    #[test]
    fn recipients_are_checked() {
        assert!(check_recipient("age1notakey").is_err());
        assert!(check_recipient("ssh-rsa AAAA").is_err());
        let identity = age::x25519::Identity::generate();
        assert!(check_recipient(&identity.to_public().to_string()).is_ok());
        assert!(share_from_answer("nothing here").is_err());
    }
}
