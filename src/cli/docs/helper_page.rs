//! mount.fuse.veilfs(8), the man page of the mount(8) helper: its options from the helper's
//! usage, its mount options from `veilfs mount`'s definitions and notes, the rest written here.

use std::io;

use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman};
use veilfs::mount_options;

use super::markup::{example, item, notes, paragraph};
use super::{title, value_name};
use crate::cli::text::{self, Block};
use crate::cli::{helper, Cli, EXIT_STATUS_HELP};

/// The options of `veilfs mount` that are also `-o` options, named with `_` for `-`
/// (mount_options::parse_options takes them).
const FLAGS_AS_OPTIONS: &[&str] = &[
    "passfile",
    "extpass",
    "keyfile",
    "idle",
    "cache-ttl",
    "threads",
];

/// The man page of the mount(8) helper, mount.fuse.veilfs(8). Its options and mount options
/// come from the helper's usage and `veilfs mount`'s definitions, so that they cannot drift
/// apart.
pub fn helper_page() -> io::Result<Vec<u8>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mount = cmd
        .find_subcommand("mount")
        .expect("veilfs has a mount command");
    let mut roff = title("mount.fuse.veilfs", "8");

    roff.control("SH", ["NAME"]);
    roff.text([roman(
        "mount.fuse.veilfs, mount.veilfs - mount(8) helper for veilfs vaults (type fuse.veilfs)",
    )]);

    roff.control("SH", ["SYNOPSIS"]);
    let usage = [
        vec![bold("mount.fuse.veilfs"), roman(" ")],
        vec![
            bold("mount -t fuse.veilfs"),
            roman(" [-o "),
            italic("OPTIONS"),
            roman("] "),
        ],
    ];
    for (i, start) in usage.into_iter().enumerate() {
        if i > 0 {
            roff.control("br", []);
        }
        let mut line = start;
        line.extend([italic("CIPHERDIR"), roman(" "), italic("MOUNTPOINT")]);
        if i == 0 {
            line.extend([
                roman(" [-sfnv] [-o "),
                italic("OPTIONS"),
                roman("] [-t "),
                italic("TYPE"),
                roman("]"),
            ]);
        }
        roff.text(line);
    }
    roff.control("br", []);
    roff.text([
        bold("mount"),
        roman(" "),
        italic("MOUNTPOINT"),
        roman("   (with a line in /etc/fstab)"),
    ]);

    roff.control("SH", ["DESCRIPTION"]);
    paragraph(
        &mut roff,
        [
            roman(
                "mount.fuse.veilfs is the veilfs binary under another name: a link to it, \
                 installed as /sbin/mount.fuse.veilfs by the Debian package and by \
                 scripts/install.sh (the name mount.veilfs is recognized too). mount(8) runs it \
                 for file systems of type ",
            ),
            bold("fuse.veilfs"),
            roman(
                ", given with -t or in /etc/fstab (when mount MOUNTPOINT is run, or at boot: \
                 systemd turns each line into a mount unit). It unlocks the vault in CIPHERDIR \
                 and mounts its plaintext view at MOUNTPOINT in the background, as ",
            ),
            bold("veilfs mount"),
            roman(
                " does, and returns once the mount is ready. The password comes from the \
                 passfile= or extpass= option, or else from the terminal mount(8) was run from. \
                 The mount shows as type fuse.veilfs in /proc/mounts, with CIPHERDIR as its \
                 source; umount(8) or ",
            ),
            bold("veilfs umount"),
            roman(" unmounts it."),
        ],
    );
    paragraph(
        &mut roff,
        [
            roman("Without the helper, mount(8) runs mount.fuse3, which runs "),
            bold("veilfs CIPHERDIR MOUNTPOINT -o OPTIONS"),
            roman(
                "; veilfs accepts that form as well, but mount(8) clears PATH, so veilfs must \
                 then be in /usr/local/bin or /usr/bin, or be named before # in the source of a \
                 mount of type fuse (/usr/bin/veilfs#/srv/vault).",
            ),
        ],
    );

    roff.control("SH", ["OPTIONS"]);
    for (block, _) in text::blocks(helper::USAGE) {
        if let Block::Definitions(rows) = block {
            for (term, description) in rows {
                item(&mut roff, vec![bold(term)], description);
            }
        }
    }

    roff.control("SH", ["MOUNT OPTIONS"]);
    paragraph(
        &mut roff,
        [
            roman(
                "OPTIONS is a comma-separated list; -o may be given more than once, and a later \
                 option overrides an earlier one (ro,rw is read-write). They are those of ",
            ),
            bold("veilfs mount -o"),
            roman(":"),
        ],
    );
    let notes_of_mount = mount
        .get_after_help()
        .map(|notes| notes.to_string())
        .unwrap_or_default();
    if let Some(rows) = text::blocks(&notes_of_mount)
        .into_iter()
        .find_map(|(block, _)| match block {
            Block::Definitions(rows) => Some(rows),
            _ => None,
        })
    {
        for (term, description) in rows {
            item(&mut roff, vec![roman(term)], description);
        }
    }
    roff.control("SS", ["The options of veilfs mount, as mount options"]);
    for long in FLAGS_AS_OPTIONS {
        let Some(arg) = mount.get_arguments().find(|a| a.get_long() == Some(long)) else {
            continue;
        };
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        item(
            &mut roff,
            vec![
                bold(format!("{}=", long.replace('-', "_"))),
                italic(value_name(arg)),
            ],
            &help,
        );
    }
    let ignored: Vec<String> = mount_options::TABLE_ONLY_OPTIONS
        .iter()
        .map(|name| name.to_string())
        .chain(
            mount_options::TABLE_ONLY_VALUE_OPTIONS
                .iter()
                .map(|name| format!("{name}=")),
        )
        .collect();
    paragraph(
        &mut roff,
        [roman(format!(
            "In /etc/fstab a space is written \\040. CMD ends at the next comma, so it cannot \
             contain one (put a longer command in a script). A password file given in \
             /etc/fstab should be readable by root only. Accepted and ignored, as options for \
             mount(8), systemd and desktops: {}, and every option that starts with x- \
             (x-systemd.automount, x-gvfs-show, ...). Refused: fsname= and subtype= (veilfs \
             sets them), allow_root (use allow_other), auto_unmount, and any other option, \
             unless -s is given (exit status 2).",
            ignored.join(", ")
        ))],
    );

    roff.control("SH", ["EXIT STATUS"]);
    paragraph(
        &mut roff,
        [roman(
            "The helper's exit status is veilfs's, which mount(8) passes on:",
        )],
    );
    notes(&mut roff, EXIT_STATUS_HELP);

    roff.control("SH", ["EXAMPLES"]);
    example(
        &mut roff,
        "mount -t fuse.veilfs -o passfile=/etc/veilfs/pass /srv/vault /mnt/vault\n\
         umount /mnt/vault\n\
         \n\
         # Check the vault, the password and the options, without mounting:\n\
         mount.fuse.veilfs /srv/vault /mnt/vault -f -o passfile=/etc/veilfs/pass",
    );
    paragraph(
        &mut roff,
        [roman(
            "Lines of /etc/fstab, each mounted by mount /mnt/vault (alternatives: use one):",
        )],
    );
    example(
        &mut roff,
        "# At boot; nofail: the boot goes on if the vault cannot be mounted\n\
         /srv/vault /mnt/vault fuse.veilfs passfile=/etc/veilfs/pass,nofail 0 0\n\
         \n\
         # On first access, unmounted after ten minutes unused; with a key file\n\
         /srv/vault /mnt/vault fuse.veilfs noauto,x-systemd.automount,\\\n\
         \x20   x-systemd.idle-timeout=10min,passfile=/etc/veilfs/pass,\\\n\
         \x20   keyfile=/etc/veilfs/key 0 0\n\
         \n\
         # The password typed at mount time, through systemd's password agents\n\
         /srv/vault /mnt/vault fuse.veilfs noauto,\\\n\
         \x20   extpass=systemd-ask-password\\040--id=veilfs:vault\\040vault 0 0",
    );
    paragraph(
        &mut roff,
        [roman(
            "(An /etc/fstab line is one line: the backslashes above only fold it.)",
        )],
    );

    roff.control("SH", ["FILES"]);
    item(
        &mut roff,
        vec![bold("/sbin/mount.fuse.veilfs")],
        "The helper: a link to /usr/bin/veilfs (the Debian package) or /usr/local/bin/veilfs \
         (scripts/install.sh).",
    );
    item(
        &mut roff,
        vec![bold("/etc/fstab")],
        "Lines of type fuse.veilfs.",
    );
    item(
        &mut roff,
        vec![bold("/usr/share/doc/veilfs/examples/systemd/")],
        "fstab.example, and systemd mount, automount and service units (the Debian package; \
         docs/systemd/ in the sources).",
    );

    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "veilfs(1), mount(8), umount(8), fstab(5), mount.fuse3(8), systemd.mount(5), \
         systemd.automount(5), systemd-ask-password(1)",
    )]);

    let mut out = Vec::new();
    roff.to_writer(&mut out)?;
    Ok(out)
}
