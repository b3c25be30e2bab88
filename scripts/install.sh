#!/usr/bin/env bash
# Installs veilfs: the binary, the mount(8) helper link, the man pages and the shell completions.
# (On Debian, `cargo deb` builds a package of the same files instead: see README.md.)
#
#   scripts/install.sh [--prefix DIR] [--destdir DIR] [--sbindir DIR] [--bin FILE] [--uninstall]
#
#   --prefix DIR    where to install (default /usr/local): DIR/bin/veilfs,
#                   DIR/share/man/man1/veilfs.1, DIR/share/man/man8/mount.fuse.veilfs.8,
#                   DIR/share/bash-completion/completions/veilfs,
#                   DIR/share/zsh/site-functions/_veilfs, DIR/share/fish/vendor_completions.d/veilfs.fish
#   --sbindir DIR   where the helper link mount.fuse.veilfs goes (default /sbin: util-linux mount(8)
#                   looks for helpers there only)
#   --destdir DIR   stage everything under DIR (for packaging; also $DESTDIR); links still point
#                   at the final location
#   --bin FILE      install this binary instead of building target/release/veilfs
#   --uninstall     remove what an install put there (the helper link only if it points at veilfs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

prefix=/usr/local
sbindir=/sbin
destdir=${DESTDIR:-}
bin=
uninstall=false
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --sbindir) sbindir=${2:?--sbindir needs a directory}; shift 2 ;;
        --sbindir=*) sbindir=${1#*=}; shift ;;
        --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --bin) bin=${2:?--bin needs a file}; shift 2 ;;
        --bin=*) bin=${1#*=}; shift ;;
        --uninstall) uninstall=true; shift ;;
        -h|--help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case $prefix in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
case $sbindir in /*) ;; *) echo "install.sh: --sbindir must be absolute" >&2; exit 2 ;; esac

bin_path=$prefix/bin/veilfs
helper=$destdir$sbindir/mount.fuse.veilfs
man_page=$destdir$prefix/share/man/man1/veilfs.1
helper_man_page=$destdir$prefix/share/man/man8/mount.fuse.veilfs.8
bash_completion=$destdir$prefix/share/bash-completion/completions/veilfs
zsh_completion=$destdir$prefix/share/zsh/site-functions/_veilfs
fish_completion=$destdir$prefix/share/fish/vendor_completions.d/veilfs.fish

if $uninstall; then
    if [ -L "$helper" ] && [ "$(readlink "$helper")" = "$bin_path" ]; then
        rm -f "$helper"
    elif [ -e "$helper" ] || [ -L "$helper" ]; then
        echo "install.sh: leaving $helper: it does not point at $bin_path" >&2
    fi
    rm -f "$destdir$bin_path" "$man_page" "$helper_man_page" "$bash_completion" "$zsh_completion" \
        "$fish_completion"
    echo "veilfs uninstalled from ${destdir}${prefix}"
    exit 0
fi

if [ -z "$bin" ]; then
    cargo build --release --quiet
    bin=target/release/veilfs
fi
[ -x "$bin" ] || { echo "install.sh: $bin is not an executable" >&2; exit 1; }

install -D -m 0755 "$bin" "$destdir$bin_path"
# The helper mount(8) runs for `-t fuse.veilfs` (and /etc/fstab lines of that type): the same
# binary, which recognizes the name.
if [ -e "$helper" ] && ! [ -L "$helper" ]; then
    echo "install.sh: $helper exists and is not a link; not replacing it" >&2
    exit 1
fi
install -d "$(dirname "$helper")"
ln -sfn "$bin_path" "$helper"
# The man pages and completions come from the binary itself (generated from its clap definitions).
install -d "$(dirname "$man_page")" "$(dirname "$helper_man_page")" "$(dirname "$bash_completion")" \
    "$(dirname "$zsh_completion")" "$(dirname "$fish_completion")"
"$bin" man > "$man_page"
"$bin" man mount.fuse.veilfs > "$helper_man_page"
"$bin" completions bash > "$bash_completion"
"$bin" completions zsh > "$zsh_completion"
"$bin" completions fish > "$fish_completion"
chmod 0644 "$man_page" "$helper_man_page" "$bash_completion" "$zsh_completion" "$fish_completion"

cat <<TXT
veilfs installed:
  $destdir$bin_path
  $helper -> $bin_path   (mount -t fuse.veilfs, /etc/fstab)
  $man_page, $helper_man_page
  completions: $bash_completion, $zsh_completion, $fish_completion
TXT
