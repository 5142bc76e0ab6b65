# Shared set-up for scripts/run, scripts/test and scripts/bench. Source it; do not run it.
# Installs missing system packages (Debian/Ubuntu, as root or with sudo), creates .venv,
# installs the project with the extras named in $VG_EXTRAS. Safe to run again: it only
# does what is missing.
set -euo pipefail

VG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VG_VENV="${VG_VENV:-$VG_ROOT/.venv}"
VG_PYTHON="${PYTHON:-python3}"

say() { printf 'voiceguide setup: %s\n' "$*" >&2; }

install_system_packages() {
  # $@: Debian package names. Installs those not already installed.
  if ! command -v apt-get >/dev/null 2>&1; then
    case "$(uname -s)" in
      Darwin) say "macOS: install the tools with Homebrew if missing: brew install espeak-ng ffmpeg portaudio" ;;
      *) say "no apt-get here: install espeak-ng, ffmpeg and PortAudio with your package manager" ;;
    esac
    return 0
  fi
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      say "please install as root: apt-get install ${missing[*]}"; return 0
    fi
  fi
  say "installing system packages: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

make_venv() {
  # $1: pip extras, e.g. "piper,mic,podcast"
  local extras="$1"
  if ! "$VG_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    say "Python 3.10 or newer is needed (found: $("$VG_PYTHON" --version 2>&1))"; exit 1
  fi
  if [ ! -x "$VG_VENV/bin/python" ]; then
    say "creating the virtual environment in $VG_VENV"
    "$VG_PYTHON" -m venv "$VG_VENV"
  fi
  local stamp="$VG_VENV/.voiceguide-installed"
  local want
  want="$(cat "$VG_ROOT/pyproject.toml" | sha256sum | cut -c1-16) $extras"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing VoiceGuide and its Python packages ($extras)"
    "$VG_VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VG_VENV/bin/python" -m pip install -q -e "$VG_ROOT[$extras]"
    echo "$want" > "$stamp"
  fi
}

# What the guide needs to speak, listen and export; python3-venv/-dev where the system Python is used.
VG_RUN_PACKAGES=(espeak-ng ffmpeg libportaudio2 portaudio19-dev libasound2-plugins pulseaudio-utils alsa-utils fonts-dejavu-core gcc)
if [ "$(command -v "$VG_PYTHON")" = "/usr/bin/python3" ]; then
  VG_RUN_PACKAGES+=(python3-venv python3-dev)
fi
# The tests also start their own PulseAudio server with virtual devices, and use sox.
# Talking-book tests: epubcheck validates the EPUB; daisy-player, driven in tmux, opens the DAISY book
# (libc6-dev: the test builds a small LD_PRELOAD shim with gcc where the machine has no ALSA card).
# flite: a third family of synthetic voices for the recogniser-head tests and `voiceguide train-recognizer`.
VG_TEST_PACKAGES=("${VG_RUN_PACKAGES[@]}" pulseaudio sox epubcheck daisy-player tmux libc6-dev flite)
