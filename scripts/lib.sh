# Shared by the setup scripts: run as root (or through sudo), and install missing Debian packages.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; exit 1; fi
}

# apt_install PACKAGE...: install the given packages (the caller lists only the missing ones).
apt_install() {
  [ $# -gt 0 ] || return 0
  log "installing $*"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "$@"
}
