#!/usr/bin/env bash
# System packages the test suite uses when it can get them: Debian's ffmpeg (libraries for the
# optional torchcodec backend, ffprobe as an independent reference) and Debian's
# forensics-samples-files (real phone video and screen recordings), unpacked without installing into
# .cache/debian-media/ of the repository. Tests that need a missing one skip with the reason;
# nothing here is required to install avssl itself.
set -u
repo="$(cd "$(dirname "$0")/.." && pwd)"
media_dir="$repo/.cache/debian-media"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_test_deps: no apt-get; tests that need ffmpeg or Debian sample media will skip" >&2
    exit 0
fi
if [ "$(id -u)" = 0 ] && ! command -v ffprobe >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null) \
        || echo "install_test_deps: could not install ffmpeg; tests that need it will skip" >&2
fi
if [ ! -d "$media_dir/usr/share/forensics-samples/original-files" ]; then
    # apt-get download needs no root, but the package lists must exist (apt-get update as root)
    tmp="$(mktemp -d)"
    if (cd "$tmp" && apt-get download -qq forensics-samples-files >/dev/null 2>&1) \
        || { [ "$(id -u)" = 0 ] && apt-get update -qq \
             && (cd "$tmp" && apt-get download -qq forensics-samples-files >/dev/null 2>&1); }; then
        mkdir -p "$media_dir" && dpkg -x "$tmp"/forensics-samples-files_*.deb "$media_dir"
    else
        echo "install_test_deps: could not download forensics-samples-files; real-footage tests will skip" >&2
    fi
    rm -rf "$tmp"
fi
exit 0
