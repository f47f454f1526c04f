#!/usr/bin/env bash
# The Linux desktop build: PyInstaller one-folder app in dist/studypack/ (studypack-gui,
# the desktop app, and studypack, the command line), then a check that it really works
# on a display of its own (Xvfb): the frozen command line verifies a real bundle and
# replays it in directory mode; the frozen desktop app starts, opens the bundle,
# verifies it (the window says "Intact") and replays it in directory mode, driven by
# the keyboard as a user would. Not part of the test suite (it takes minutes).
#
#   bash packaging/build-desktop.sh            # build, then check
#   bash packaging/build-desktop.sh --no-check # build only
#   DISPLAY_NUMBER=91 bash packaging/build-desktop.sh   # the Xvfb display to use
#
# Needs packaging/setup.sh first (Xvfb, ImageMagick, the .venv with studypack); installs
# xdotool (to press keys in the app) when it is missing. PyPI is used once for
# PyInstaller and for numpy in the example study's own virtualenv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
log() { printf '\033[1m[desktop]\033[0m %s\n' "$*"; }
fail() { printf '\033[1m[desktop]\033[0m FAILED: %s\n' "$*" >&2; exit 1; }

check=1
[ "${1:-}" = "--no-check" ] && check=0
display=":${DISPLAY_NUMBER:-91}"
work="$here/build/desktop"
venv="$work/venv"

# ------------------------------------------------------------------------- build
log "build environment: a regular (non-editable) install of studypack + PyInstaller"
mkdir -p "$work"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip
"$venv/bin/pip" install -q --disable-pip-version-check "$here" "pyinstaller>=6.10"

log "PyInstaller: dist/studypack/"
rm -rf "$here/dist/studypack"
"$venv/bin/pyinstaller" --noconfirm --log-level WARN --distpath "$here/dist" \
  --workpath "$work/pyinstaller" "$here/packaging/studypack.spec"
app="$here/dist/studypack"
[ -x "$app/studypack-gui" ] && [ -x "$app/studypack" ] || fail "the build made no programs"
log "built: $(du -sh "$app" | cut -f1) in $app"
[ "$check" = 1 ] || exit 0

# ------------------------------------------------------------------------- check
command -v xdotool >/dev/null || {
  log "installing xdotool"
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends xdotool >/dev/null
}
check_dir="$work/check"
rm -rf "$check_dir"
mkdir -p "$check_dir"
export XDG_CONFIG_HOME="$check_dir/config" XDG_DATA_HOME="$check_dir/data" \
       XDG_CACHE_HOME="$check_dir/cache"

log "a real bundle: the example study, traced by the installed studypack (studypack demo)"
"$venv/bin/studypack" demo --dir "$check_dir/demo" --mode directory >"$check_dir/demo.log" 2>&1 \
  || fail "studypack demo (see $check_dir/demo.log)"
bundle="$check_dir/demo/heat-diffusion.studypack"

log "frozen command line: verify, replay --mode directory"
"$app/studypack" verify "$bundle" || fail "the frozen studypack verify"
"$app/studypack" replay "$bundle" --mode directory --json >"$check_dir/cli-replay.json" \
  || fail "the frozen studypack replay (see $check_dir/cli-replay.json)"
grep -q '"reproduced": true' "$check_dir/cli-replay.json" || fail "the frozen replay did not reproduce"

log "frozen desktop app on Xvfb $display: open, verify, replay in directory mode"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$check_dir/xvfb.log" 2>&1 &
xvfb=$!
gui=""
cleanup() {
  [ -n "$gui" ] && kill "$gui" 2>/dev/null || true
  kill "$xvfb" 2>/dev/null || true
}
trap cleanup EXIT
export DISPLAY="$display"
for _ in $(seq 1 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.2; done
"$app/studypack-gui" "$bundle" >"$check_dir/gui.log" 2>&1 &
gui=$!
window=""
for _ in $(seq 1 120); do
  window="$(xdotool search --onlyvisible --name 'heat-diffusion|studypack' 2>/dev/null | head -1 || true)"
  [ -n "$window" ] && break
  kill -0 "$gui" 2>/dev/null || fail "the desktop app exited (see $check_dir/gui.log)"
  sleep 0.5
done
[ -n "$window" ] || fail "no window appeared within a minute"
sleep 8                                    # it reads and verifies the bundle (a worker thread)
import -window root "$check_dir/1-opened.png"
xdotool windowactivate --sync "$window" 2>/dev/null || xdotool windowfocus --sync "$window"
xdotool key alt+p                          # the Replay tab (Re&play)
sleep 1
xdotool key alt+m                          # its Mode box (the label's mnemonic)
xdotool type --delay 150 "directory"       # the combo box selects the mode by its name
sleep 1
import -window root "$check_dir/2-mode.png"
xdotool key Tab                            # the Replay button, next in the tab order
xdotool key space
replays="$XDG_DATA_HOME"
for _ in $(seq 1 240); do
  found="$(find "$replays" -path '*/study/results/summary.json' 2>/dev/null | head -1 || true)"
  [ -n "$found" ] && break
  kill -0 "$gui" 2>/dev/null || fail "the desktop app exited during the replay (see $check_dir/gui.log)"
  sleep 0.5
done
[ -n "$found" ] || fail "the replay wrote no outputs within two minutes (see $check_dir/*.png)"
sleep 3
import -window root "$check_dir/3-replayed.png"
log "checked: screenshots in $check_dir (1-opened, 2-mode, 3-replayed); replayed study in ${found%/results/*}"
