//! The hand-written sections of veilfs(1) that follow the commands: passwords and key files,
//! mount(8) and systemd, logging, files, environment, exit status. Prose only: what the clap
//! definitions cannot say.

use clap_mangen::roff::{bold, italic, roman, Roff};

use super::markup::{example, item, notes, paragraph};
use crate::cli::EXIT_STATUS_HELP;

pub(super) fn extra_sections(roff: &mut Roff) {
    roff.control("SH", ["PASSWORDS AND KEY FILES"]);
    paragraph(
        roff,
        [roman(
            "The password comes from the terminal (asked twice by init), from the first line of \
             the file given with ",
        ),
        bold("--passfile"),
        roman(", from the first line printed by the command given with "),
        bold("--extpass"),
        roman(
            " (run with sh -c), or from a line of standard input when it is not a terminal. A \
             vault created with ",
        ),
        bold("init --keyfile"),
        italic(" FILE"),
        roman(
            " needs that file as well as the password, ever after: every byte of the file \
             counts (at most 1 MiB; a FIFO, a device or a directory is refused at once, exit \
             status 1), so it must never change. A password file is a regular file of at most \
             64 KiB or a pipe (such as /dev/stdin); a FIFO nobody writes to reads as empty. \
             Neither the password alone nor the key file with \
             a wrong password unlocks it; a missing ",
        ),
        bold("--keyfile"),
        roman(
            " is reported before the password is asked for (exit status 6). The recovery key \
             printed by init opens the vault without either: ",
        ),
        bold("veilfs passwd --recovery-key --new-keyfile"),
        roman(
            " FILE asks for it (without showing it; it may be pasted as init printed it, over \
             several lines) and sets a new password and key file. ",
        ),
        bold("--recovery-key-file"),
        roman(
            " KEY reads it from the file KEY instead (- for standard input), which may hold \
             all of init's output: the key's lines are found in it. ",
        ),
        bold("init --recovery-key-file"),
        roman(" FILE writes it to a new file, readable only by its owner, instead of showing it."),
    ]);

    roff.control("SH", ["MOUNT(8), FSTAB AND MOUNT HELPER"]);
    paragraph(
        roff,
        [
            roman(
                "Installed as (or linked to) /sbin/mount.fuse.veilfs, as the Debian package and \
                 scripts/install.sh do, the binary is the helper mount(8) runs for file system \
                 type ",
            ),
            bold("fuse.veilfs"),
            roman(
                ", so that mount -t fuse.veilfs and /etc/fstab lines mount vaults, with the \
                 options of ",
            ),
            bold("veilfs mount -o"),
            roman(
                " (see above): passfile=FILE, extpass=CMD, keyfile=FILE, idle=DURATION, \
                 cache_ttl=DURATION, threads=N, and those mount(8) and systemd hand on. ",
            ),
            bold("mount.fuse.veilfs"),
            roman("(8) describes the helper, its options and its exit status, with examples."),
        ],
    );
    paragraph(
        roff,
        [roman(
            "To mount on first access and unmount after 10 minutes unused, add \
             noauto,x-systemd.automount,x-systemd.idle-timeout=10min to the options in \
             /etc/fstab, or use a pair of units:",
        )],
    );
    example(
        roff,
        "# /etc/systemd/system/mnt-vault.mount\n\
         [Mount]\n\
         What=/srv/vault\n\
         Where=/mnt/vault\n\
         Type=fuse.veilfs\n\
         Options=passfile=/etc/veilfs/pass\n\
         \n\
         # /etc/systemd/system/mnt-vault.automount\n\
         [Automount]\n\
         Where=/mnt/vault\n\
         TimeoutIdleSec=10min\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target",
    );

    roff.control("SH", ["SYSTEMD"]);
    paragraph(
        roff,
        [roman(
            "A .mount unit (or an /etc/fstab line, which systemd turns into one) mounts through \
             the helper; add a .automount unit, or x-systemd.automount, to mount on first \
             access, and x-systemd.idle-timeout= (TimeoutIdleSec=) or ",
        ),
        bold("idle="),
        roman(" to unmount when unused. A service runs "),
        bold("veilfs mount --foreground"),
        roman(
            ": with Type=notify it reports readiness once the mount is live, and stopping the \
             service unmounts. Credentials of the service reach veilfs as files: ",
        ),
        bold("LoadCredential=veilfs-password:/etc/veilfs/vault.pass"),
        roman(" and "),
        bold("--passfile %d/veilfs-password"),
        roman(" (%d is $CREDENTIALS_DIRECTORY). "),
        bold("--extpass systemd-ask-password"),
        roman(
            " asks through systemd's password agents. Examples: docs/systemd/ in the sources, \
             /usr/share/doc/veilfs/examples/systemd/ from the Debian package.",
        ),
    ]);
    example(
        roff,
        "[Service]\n\
         Type=notify\n\
         LoadCredential=veilfs-password:/etc/veilfs/vault.pass\n\
         ExecStart=/usr/local/bin/veilfs mount --foreground \\\n\
         \x20   --passfile %d/veilfs-password /srv/vault /mnt/vault",
    );

    roff.control("SH", ["LOGGING"]);
    paragraph(
        roff,
        [roman(
            "Messages go to standard error: warnings and errors, more with -v (info), -vv \
             (debug) and -vvv (trace), errors only with -q; RUST_LOG overrides this. Once a \
             mount has detached from the terminal, they go to syslog (facility daemon, through \
             /dev/log), and are dropped when there is no syslog. Logs name backing \
             (encrypted) paths, never plaintext names, passwords or keys; fuser's per-request \
             debug messages, which hold plaintext names, appear only when RUST_LOG asks for \
             them.",
        )],
    );

    roff.control("SH", ["FILES"]);
    roff.control("PP", []);
    roff.text([roman("In CIPHERDIR, the backing directory:")]);
    item(
        roff,
        vec![bold("veilfs.conf")],
        "The vault's config: format version, Argon2id parameters and salt, feature flags \
         (name encoding, long-name threshold, key file), and the master key wrapped with \
         AES-256-SIV under the key derived from the password. JSON, read-only (0400); any \
         change to it is detected. Without it the vault cannot be opened, not even with the recovery key: keep a backup.",
    );
    item(
        roff,
        vec![bold("veilfs.diriv")],
        "In every directory: the 16-byte IV its entries' names are encrypted with.",
    );
    item(
        roff,
        vec![bold("veilfs.longname."), italic("HASH")],
        "An entry whose encrypted name is longer than the long-name threshold, stored under \
         a hash of that name.",
    );
    item(
        roff,
        vec![bold("veilfs.longname."), italic("HASH"), bold(".name")],
        "The full encrypted name of such an entry.",
    );
    item(
        roff,
        vec![bold("veilfs.conf.tmp")],
        "Left only by a crash while veilfs.conf was being replaced; removed by the next change.",
    );
    roff.control("PP", []);
    roff.text([roman(
        "Installed by the Debian package (with veilfs in /usr/bin) or by scripts/install.sh \
         (in /usr/local/bin):",
    )]);
    item(
        roff,
        vec![bold("/sbin/mount.fuse.veilfs")],
        "A link to veilfs: the helper mount(8) runs for type fuse.veilfs.",
    );

    roff.control("SH", ["ENVIRONMENT"]);
    item(
        roff,
        vec![bold("RUST_LOG")],
        "Log filter (tracing-subscriber EnvFilter syntax), instead of -v and -q.",
    );
    item(
        roff,
        vec![bold("NOTIFY_SOCKET")],
        "Set by systemd for Type=notify services: mount --foreground reports READY=1 and \
         STOPPING=1 to it.",
    );
    item(
        roff,
        vec![bold("CREDENTIALS_DIRECTORY")],
        "Set by systemd for services with LoadCredential=: pass a file in it to --passfile.",
    );
    item(
        roff,
        vec![bold("FUSERMOUNT_PATH")],
        "The fusermount3 binary to use when not root.",
    );
    item(
        roff,
        vec![bold("VEILFS_SYSLOG_SOCKET")],
        "Another syslog socket than /dev/log, for a detached mount (for tests).",
    );

    roff.control("SH", ["EXIT STATUS"]);
    notes(roff, EXIT_STATUS_HELP);

    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "mount.fuse.veilfs(8), mount(8), fstab(5), mount.fuse3(8), fusermount3(1), \
         systemd.mount(5), systemd.automount(5), systemd.exec(5), systemd-ask-password(1), \
         gocryptfs(1)",
    )]);
}
