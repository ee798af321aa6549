#!/usr/bin/env bash
# System packages the test suite uses when it can get them: Debian's ffmpeg (libraries for the
# optional torchcodec backend, ffprobe as an independent reference). Tests that need a missing one
# skip with the reason; nothing here is required to install avssl itself.
set -u
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "install_test_deps: no apt-get or not root; tests that need ffmpeg will skip" >&2
    exit 0
fi
if ! command -v ffprobe >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null) \
        || echo "install_test_deps: could not install ffmpeg; tests that need it will skip" >&2
fi
exit 0
