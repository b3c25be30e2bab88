# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_veilfs_global_optspecs
    string join \n v/verbose q/quiet h/help V/version
end

function __fish_veilfs_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_veilfs_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_veilfs_using_subcommand
    set -l cmd (__fish_veilfs_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c veilfs -n "__fish_veilfs_needs_command" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_needs_command" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_needs_command" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "init" -d 'Create a new vault in an empty directory'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "info" -d 'Show a vault\'s format and parameters (no password needed)'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "passwd" -d 'Change the password, or set a new one with the recovery key'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "slot" -d 'List, add or remove the ways to unlock a vault'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "mount" -d 'Unlock a vault and mount it'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "umount" -d 'Unmount a mounted vault'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "fsck" -d 'Check a vault, and repair what can be repaired safely'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "rekey" -d 'Replace the master key, re-encrypting every file'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "upgrade" -d 'Move a format 1 vault to format 2, re-encrypting every file'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "encrypt-path" -d 'Print the backing path of plaintext paths (no mount needed)'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "decrypt-path" -d 'Print the plaintext path of backing paths (no mount needed)'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "man" -d 'Print a man page (roff) on standard output'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "completions" -d 'Print the completion script for SHELL on standard output'
complete -c veilfs -n "__fish_veilfs_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l passfile -d 'Read the password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l extpass -d 'Run CMD with \'sh -c\' and use the first line of its output as the password (a password manager, for example: --extpass \'pass show veilfs\')' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l keyfile -d 'Require FILE as well as the password to unlock, ever after (a second factor). Any file of at most 1 MiB that never changes will do, since all of its bytes count: keep it off the sync folder, and keep a copy' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l name-encoding -d 'How encrypted file names are written in CIPHERDIR: base64 gives the shortest names; base32 is for sync targets or file systems that ignore case (Windows, macOS)' -r -f -a "base64\t'Unpadded URL-safe base64: shortest names, for case-sensitive storage (the default)'
base32\t'Unpadded lowercase base32: for case-insensitive sync targets'"
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l longname-max -d 'Encrypted names longer than N bytes are stored in a separate file; staying below the 255-byte limit leaves room for the suffix a sync tool adds to a conflict copy' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l kdf-memory -d 'Memory the password key derivation (Argon2id) uses, in MiB: more makes guessing the password costlier and unlocking slower' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l kdf-iterations -d 'Passes of the key derivation over its memory: more makes unlocking slower' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l label -d 'The name of the password slot (\'veilfs slot list\' shows it; not secret: the config that holds it is in the sync folder)' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l recovery-key-file -d 'Write the recovery key to FILE (a new file, readable only by you) instead of showing it: then move it somewhere safe, such as a password manager, away from this disk and the sync folder' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l config -d 'With --reverse: the reverse config, when it is not PLAINDIR/.veilfs.reverse.conf' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -l reverse -d 'Reverse mode: the directory given is a plaintext directory (PLAINDIR), whose encrypted view \'veilfs mount --reverse\' shows for backups'
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand init" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand info" -l json -d 'Print a JSON object instead of text'
complete -c veilfs -n "__fish_veilfs_using_subcommand info" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand info" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand info" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand info" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -l passfile -d 'Read the current password from the first line of FILE' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -l extpass -d 'Run CMD with \'sh -c\' and use the first line of its output as the current password' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -l recovery-key-file -d 'Unlock with the recovery key in FILE instead of the current password (when it is lost); \'-\' reads it from standard input. FILE may hold init\'s whole output: the key\'s lines are found in it. Case, spaces, dashes and line breaks in the key do not matter' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -l contact-share -d 'Unlock with a recovery contact\'s answer in FILE (\'veilfs slot contact-answer\' wrote it) and the recovery passphrase (asked for, or --passfile), instead of the password' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -l new-passfile -d 'Read the new password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -l keyfile -d 'The vault\'s key file (for a vault created with \'init --keyfile\'): needed to unlock with the password, and needed with the new password too' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -l new-keyfile -d 'Require FILE instead of the current key file (if any) with the new password, from now on' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -l slot -d 'The password slot to change, by label or ID (format 2, when the vault has several; \'veilfs slot list\' shows them)' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -l recovery-key -d 'Unlock with the recovery key, typed or pasted at a prompt that does not show it (or read from standard input when it is not a terminal), instead of the current password'
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -l without-keyfile -d 'Stop needing a key file: the new password alone will unlock (asked for by name, so that nothing drops the second factor by accident)'
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand passwd" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and not __fish_seen_subcommand_from list add remove contact-request contact-answer help" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and not __fish_seen_subcommand_from list add remove contact-request contact-answer help" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and not __fish_seen_subcommand_from list add remove contact-request contact-answer help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and not __fish_seen_subcommand_from list add remove contact-request contact-answer help" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and not __fish_seen_subcommand_from list add remove contact-request contact-answer help" -f -a "list" -d 'List the slots (no password needed)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and not __fish_seen_subcommand_from list add remove contact-request contact-answer help" -f -a "add" -d 'Add a slot, unlocking through another'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and not __fish_seen_subcommand_from list add remove contact-request contact-answer help" -f -a "remove" -d 'Remove a slot, unlocking through another (or the same)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and not __fish_seen_subcommand_from list add remove contact-request contact-answer help" -f -a "contact-request" -d 'Print a contact slot\'s request for its contact (no password needed)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and not __fish_seen_subcommand_from list add remove contact-request contact-answer help" -f -a "contact-answer" -d 'As the contact: decrypt a request with your key and print the answer to send back'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and not __fish_seen_subcommand_from list add remove contact-request contact-answer help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from list" -l json -d 'Print a JSON array instead of text'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l kind -d 'What the new slot opens with' -r -f -a "password\t'A password (Argon2id)'
password+keyfile\t'A password and a key file (Argon2id with the key file as its secret input)'
keyfile\t'A key file alone (Argon2id of the key file\'s hash): a trusted device that automounts'
recovery\t'A recovery key: a random secret shown once (HKDF: it has 256 bits of entropy)'
contact\t'A recovery contact\'s share and the user\'s recovery passphrase, together'"
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l label -d 'Its name in lists (unique in the vault; not secret)' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l new-passfile -d 'The new slot\'s password: the first line of FILE (else asked twice)' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l new-keyfile -d 'The new slot\'s key file (kinds keyfile and password+keyfile)' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l contact -d 'The recovery contact (kind contact): their age recipient (age1...) or ssh-ed25519 public key. The slot\'s passphrase (--new-passfile, or asked twice) is the user\'s half' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l kdf-memory -d 'Memory of the new slot\'s key derivation, in MiB (default: 256)' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l kdf-iterations -d 'Passes of the new slot\'s key derivation (default: 3)' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l passfile -d 'Read the password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l extpass -d 'Run CMD with \'sh -c\' and use the first line of its output as the password (a password manager, for example: --extpass \'pass show veilfs\')' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l keyfile -d 'Unlock with this key file (alone, or with the password, as its slot needs)' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l recovery-key-file -d 'Unlock with the recovery key in FILE (\'-\': standard input; init\'s whole output will do)' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l contact-share -d 'Unlock with a recovery contact\'s answer in FILE and the recovery passphrase' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -l recovery-key -d 'Unlock with the recovery key, typed or pasted at a prompt that does not show it'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from remove" -l passfile -d 'Read the password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from remove" -l extpass -d 'Run CMD with \'sh -c\' and use the first line of its output as the password (a password manager, for example: --extpass \'pass show veilfs\')' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from remove" -l keyfile -d 'Unlock with this key file (alone, or with the password, as its slot needs)' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from remove" -l recovery-key-file -d 'Unlock with the recovery key in FILE (\'-\': standard input; init\'s whole output will do)' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from remove" -l contact-share -d 'Unlock with a recovery contact\'s answer in FILE and the recovery passphrase' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from remove" -l recovery-key -d 'Unlock with the recovery key, typed or pasted at a prompt that does not show it'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from contact-request" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from contact-request" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from contact-request" -s h -l help -d 'Print help'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from contact-request" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from contact-answer" -s i -l identity -d 'Your age identity file (age-keygen\'s) or unencrypted OpenSSH ed25519 private key' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from contact-answer" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from contact-answer" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from contact-answer" -s h -l help -d 'Print help'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from contact-answer" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the slots (no password needed)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a slot, unlocking through another'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a slot, unlocking through another (or the same)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from help" -f -a "contact-request" -d 'Print a contact slot\'s request for its contact (no password needed)'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from help" -f -a "contact-answer" -d 'As the contact: decrypt a request with your key and print the answer to send back'
complete -c veilfs -n "__fish_veilfs_using_subcommand slot; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l passfile -d 'Read the password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l extpass -d 'Run CMD with \'sh -c\' and use the first line of its output as the password (a password manager, for example: --extpass \'pass show veilfs\')' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l keyfile -d 'The vault\'s key file, for a vault created with \'init --keyfile\'' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l idle -d 'Unmount after DURATION without any use (30s, 10m, 1h30m); never while a file is open in the mount or a process has its working directory there' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l cache-ttl -d 'How long the kernel may trust names, attributes and cached contents before asking again [default: 1s]. A vault that only this mount changes can take minutes (stat by path, as git status and make do, then rarely asks); for one a sync tool writes to, keep 1s, or 0 to ask every time' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -s o -d 'Mount options, comma-separated (see below)' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l threads -d 'Threads serving requests through /dev/fuse [default: twice the number of CPUs, 4 to 16]; over io_uring, one thread per CPU serves its queue, and these only what still comes through /dev/fuse (interrupts, forgets)' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l transport -d 'How requests reach veilfs: io-uring (FUSE over io_uring, Linux 6.14+, once root has switched it on), dev-fuse, or auto: io-uring where the kernel offers it [default: $VEILFS_TRANSPORT, else auto]' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l uring-depth -d 'Requests each CPU\'s io_uring queue holds at once [default: 8]' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l config -d 'With --reverse: the reverse config, when it is not PLAINDIR/.veilfs.reverse.conf' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l exclude -d 'With --reverse: leave out what PATTERN matches (gitignore syntax, matched against the path from PLAINDIR); may be repeated' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l exclude-from -d 'With --reverse: leave out what the patterns in FILE match (one a line, gitignore syntax); may be repeated' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -s f -l foreground -d 'Stay in the foreground and log to stderr; Ctrl-C, SIGTERM or SIGHUP unmounts. Under systemd ($NOTIFY_SOCKET set) readiness is reported, for Type=notify units'
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -l reverse -d 'Show a read-only, encrypted view of the plaintext directory PLAINDIR, for backups that hold only ciphertext: the view is what a vault holding PLAINDIR\'s files would contain, and a copy of it mounts as a vault (see \'veilfs init --reverse\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand mount" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand umount" -s z -l lazy -d 'Detach the mount now even if it is busy; it goes away once the last file in it is closed'
complete -c veilfs -n "__fish_veilfs_using_subcommand umount" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand umount" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand umount" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand umount" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand fsck" -l passfile -d 'Read the password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand fsck" -l extpass -d 'Run CMD with \'sh -c\' and use the first line of its output as the password (a password manager, for example: --extpass \'pass show veilfs\')' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand fsck" -l keyfile -d 'The vault\'s key file, for a vault created with \'init --keyfile\'' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand fsck" -l repair -d 'Do the safe repairs (see below), and say what was done'
complete -c veilfs -n "__fish_veilfs_using_subcommand fsck" -l plan -d 'Print every repair --repair would make, one line each, and change nothing'
complete -c veilfs -n "__fish_veilfs_using_subcommand fsck" -l json -d 'Print one JSON object (for scripts) instead of lines'
complete -c veilfs -n "__fish_veilfs_using_subcommand fsck" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand fsck" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand fsck" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand fsck" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -l passfile -d 'Read the password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -l extpass -d 'Run CMD with \'sh -c\' and use the first line of its output as the password (a password manager, for example: --extpass \'pass show veilfs\')' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -l recovery-key-file -d 'Unlock with the recovery key in FILE instead of the password; \'-\' reads it from standard input. FILE may hold init\'s whole output' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -l keyfile -d 'The vault\'s key file, when its password slot needs one; the new password needs it too' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -l new-passfile -d 'Read the new password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -l keep-slot -d 'Carry slot LABEL over to the new key (rekey): its password is asked for (or read from the next line of standard input); a slot that takes a key file is given as LABEL=FILE. The slots neither unlocked with nor kept are dropped' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -l recovery-key -d 'Unlock with the recovery key, typed or pasted at a prompt that does not show it (or read from standard input when it is not a terminal), instead of the password'
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand rekey" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -l passfile -d 'Read the password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -l extpass -d 'Run CMD with \'sh -c\' and use the first line of its output as the password (a password manager, for example: --extpass \'pass show veilfs\')' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -l recovery-key-file -d 'Unlock with the recovery key in FILE instead of the password; \'-\' reads it from standard input. FILE may hold init\'s whole output' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -l keyfile -d 'The vault\'s key file, when its password slot needs one; the new password needs it too' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -l new-passfile -d 'Read the new password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -l keep-slot -d 'Carry slot LABEL over to the new key (rekey): its password is asked for (or read from the next line of standard input); a slot that takes a key file is given as LABEL=FILE. The slots neither unlocked with nor kept are dropped' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -l recovery-key -d 'Unlock with the recovery key, typed or pasted at a prompt that does not show it (or read from standard input when it is not a terminal), instead of the password'
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand upgrade" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand encrypt-path" -l passfile -d 'Read the password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand encrypt-path" -l extpass -d 'Run CMD with \'sh -c\' and use the first line of its output as the password (a password manager, for example: --extpass \'pass show veilfs\')' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand encrypt-path" -l keyfile -d 'The vault\'s key file, for a vault created with \'init --keyfile\'' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand encrypt-path" -l config -d 'With --reverse: the reverse config, when it is not PLAINDIR/.veilfs.reverse.conf' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand encrypt-path" -l reverse -d 'Reverse mode: the directory given is a plaintext directory (PLAINDIR), whose encrypted view \'veilfs mount --reverse\' shows for backups'
complete -c veilfs -n "__fish_veilfs_using_subcommand encrypt-path" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand encrypt-path" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand encrypt-path" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand encrypt-path" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand decrypt-path" -l passfile -d 'Read the password from the first line of FILE instead of asking' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand decrypt-path" -l extpass -d 'Run CMD with \'sh -c\' and use the first line of its output as the password (a password manager, for example: --extpass \'pass show veilfs\')' -r
complete -c veilfs -n "__fish_veilfs_using_subcommand decrypt-path" -l keyfile -d 'The vault\'s key file, for a vault created with \'init --keyfile\'' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand decrypt-path" -l config -d 'With --reverse: the reverse config, when it is not PLAINDIR/.veilfs.reverse.conf' -r -F
complete -c veilfs -n "__fish_veilfs_using_subcommand decrypt-path" -l reverse -d 'Reverse mode: the directory given is a plaintext directory (PLAINDIR), whose encrypted view \'veilfs mount --reverse\' shows for backups'
complete -c veilfs -n "__fish_veilfs_using_subcommand decrypt-path" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand decrypt-path" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand decrypt-path" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand decrypt-path" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand man" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand man" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c veilfs -n "__fish_veilfs_using_subcommand man" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand completions" -s v -l verbose -d 'More log output on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c veilfs -n "__fish_veilfs_using_subcommand completions" -s q -l quiet -d 'Print only errors and the essential output (init still prints the recovery key)'
complete -c veilfs -n "__fish_veilfs_using_subcommand completions" -s h -l help -d 'Print help'
complete -c veilfs -n "__fish_veilfs_using_subcommand completions" -s V -l version -d 'Print version'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "init" -d 'Create a new vault in an empty directory'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "info" -d 'Show a vault\'s format and parameters (no password needed)'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "passwd" -d 'Change the password, or set a new one with the recovery key'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "slot" -d 'List, add or remove the ways to unlock a vault'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "mount" -d 'Unlock a vault and mount it'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "umount" -d 'Unmount a mounted vault'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "fsck" -d 'Check a vault, and repair what can be repaired safely'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "rekey" -d 'Replace the master key, re-encrypting every file'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "upgrade" -d 'Move a format 1 vault to format 2, re-encrypting every file'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "encrypt-path" -d 'Print the backing path of plaintext paths (no mount needed)'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "decrypt-path" -d 'Print the plaintext path of backing paths (no mount needed)'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "man" -d 'Print a man page (roff) on standard output'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "completions" -d 'Print the completion script for SHELL on standard output'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and not __fish_seen_subcommand_from init info passwd slot mount umount fsck rekey upgrade encrypt-path decrypt-path man completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and __fish_seen_subcommand_from slot" -f -a "list" -d 'List the slots (no password needed)'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and __fish_seen_subcommand_from slot" -f -a "add" -d 'Add a slot, unlocking through another'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and __fish_seen_subcommand_from slot" -f -a "remove" -d 'Remove a slot, unlocking through another (or the same)'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and __fish_seen_subcommand_from slot" -f -a "contact-request" -d 'Print a contact slot\'s request for its contact (no password needed)'
complete -c veilfs -n "__fish_veilfs_using_subcommand help; and __fish_seen_subcommand_from slot" -f -a "contact-answer" -d 'As the contact: decrypt a request with your key and print the answer to send back'
