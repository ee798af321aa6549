"""The spoken-letters world of `avssl bench learn`: real recordings of the letters A-Z (Debian's
`klettres-data`, one voice per language) turned into videos that show the letter while its recording
plays.

Every (letter, voice) pair is rendered several times with independent nuisances (font, size, position,
drift, tilt, colours, background, noise, where in the video the letter is spoken): render 1 is the test
video; render 0, and with `train_renders` N > 1 renders 2..N as well, are the pretraining (and probe
training) videos. The recording is the same in every render of a pair: more renders add views of the
glyph, not new speech. A video lasts `VIDEO_SECONDS`: noise and an empty background, and the
trimmed recording plays `PLAYS` times, once in each of `PLAYS` equal slots of the video, and each time
the glyph comes on screen as the recording starts and stays for `GLYPH_SECONDS` (so any window of a
second holds a letter, and the centre clip that `avssl extract` takes holds the middle one). Where in
its slot an utterance starts is drawn independently of the recording, and the glyph's time on screen is
the same for every recording: the lengths of the 286 recordings are nearly all distinct and the renders
of a recording share it, so a glyph shown for the recording's length (format 3), or an onset that
depended on it, would tell the video which recording plays, and a video probe or a cross-modal match
could name the letter from timing alone, without the glyph.
The package is fetched with `apt-get download` and unpacked into the cache (never installed); where
apt is not available the benchmark says so and stops.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from avssl.data.probing import build_manifest, probe_paths
from avssl.errors import UsageError

PACKAGE = "klettres-data"
VIDEO_SECONDS = 3.5
FPS = 25
WIDTH, HEIGHT = 128, 96
SAMPLE_RATE = 16000
PLAYS = 5  # utterances per video, one per slot of VIDEO_SECONDS / PLAYS
GLYPH_SECONDS = 0.5  # the glyph's time on screen from each utterance's start, whatever the recording's length
MAX_TILT = 8.0  # degrees
NOISE_DB = -32.0  # noise floor under the speech peak
TRIM_LEVEL = 0.05  # share of the peak amplitude below which a recording's ends count as silence
FORMAT_VERSION = 5  # bump when a render changes: the cache then renders again
TEST_RENDER = 1  # the render index of the test videos; the training renders are 0 and 2..N


class LettersUnavailable(RuntimeError):
    """The recordings cannot be had here (no apt, no network to Debian): the benchmark cannot run."""


@dataclass(frozen=True)
class Recording:
    letter: str  # "A".."Z"
    voice: str  # klettres language code, e.g. "en_GB"
    path: str


def fetch_klettres(cache_dir: str) -> str:
    """The klettres data folder (`.../usr/share/klettres`): the installed package, else the package
    downloaded and unpacked into `cache_dir` once. LettersUnavailable says why when neither works."""
    installed = "/usr/share/klettres"
    unpacked = os.path.join(cache_dir, "klettres-data", "usr", "share", "klettres")
    for root in (installed, unpacked):
        if glob.glob(os.path.join(root, "*", "sounds.xml")):
            return root
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise LettersUnavailable(f"{PACKAGE} is not installed and apt-get / dpkg are not available to fetch it")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(["apt-get", "download", "-qq", PACKAGE], cwd=tmp, capture_output=True, text=True)
        debs = glob.glob(os.path.join(tmp, f"{PACKAGE}_*.deb"))
        if done.returncode != 0 or not debs:
            raise LettersUnavailable(f"apt-get download {PACKAGE} failed: {done.stderr.strip()[-300:]}")
        target = os.path.join(cache_dir, "klettres-data")
        os.makedirs(target, exist_ok=True)
        subprocess.run(["dpkg", "-x", debs[0], target], check=True, capture_output=True)
    return unpacked


def find_recordings(root: str) -> list[Recording]:
    """Every voice's recordings of A-Z, for the voices that have all 26 (others would unbalance the
    classes), sorted by voice then letter."""
    out = []
    for xml in sorted(glob.glob(os.path.join(root, "*", "sounds.xml"))):
        text = open(xml, encoding="utf-8").read()
        if "<alphabet>" not in text:
            continue
        alphabet = text.split("<alphabet>", 1)[1].split("</alphabet>", 1)[0]
        sounds = re.findall(r'<sound\s+name="([^"]+)"\s+file="([^"]+)"', alphabet)
        letters = {name.upper(): os.path.join(root, file) for name, file in sounds if re.fullmatch("[A-Za-z]", name)}
        if len(letters) == 26 and all(os.path.isfile(p) for p in letters.values()):
            voice = os.path.basename(os.path.dirname(xml))
            out += [Recording(letter, voice, letters[letter]) for letter in sorted(letters)]
    if not out:
        raise LettersUnavailable(f"no voice with all 26 letters under {root}")
    return out


def fonts() -> list[str]:
    """The TrueType fonts the glyphs are drawn in: four faces (sans, sans bold, serif, mono bold) of the
    DejaVu family that matplotlib ships (so no system font is needed)."""
    import matplotlib

    folder = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
    names = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono-Bold.ttf"]
    found = [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]
    if not found:
        raise UsageError(f"no font found in {folder}")
    return found


def trimmed_speech(path: str) -> np.ndarray:
    """float32 [N] at SAMPLE_RATE: the recording without its silent ends, peak-normalised to 0.5."""
    from avssl.media import probe, read_audio

    wave = read_audio(path, 0.0, probe(path).duration, SAMPLE_RATE).numpy()
    loud = np.flatnonzero(np.abs(wave) > TRIM_LEVEL * np.abs(wave).max())
    wave = wave[loud[0]:loud[-1] + 1]
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32)


def glyph_mask(letter: str, font_path: str, size: int, tilt: float) -> np.ndarray:
    """float32 [h, w] in [0, 1]: the letter's coverage, drawn at `size` px and turned by `tilt` degrees."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, size)
    left, top, right, bottom = font.getbbox(letter)
    canvas = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), letter, fill=255, font=font)
    canvas = canvas.rotate(tilt, resample=Image.BILINEAR, expand=True)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def background(rng: np.random.Generator) -> np.ndarray:
    """float32 [H, W, 3]: a two-colour gradient in a random direction with a fixed noise texture."""
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    ramp = (np.cos(angle) * x / WIDTH + np.sin(angle) * y / HEIGHT + 1) / 2
    texture = rng.normal(0, rng.uniform(2, 12), (HEIGHT, WIDTH, 1))
    return (a + (b - a) * ramp[..., None] + texture).astype(np.float32)


def letter_colour(bg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An RGB colour far from the background's mean (the glyph stays visible on any background)."""
    mean = bg.mean(axis=(0, 1))
    while True:
        colour = rng.uniform(0, 255, 3)
        if np.abs(colour - mean).sum() > 200:
            return colour


def render(recording: Recording, render_index: int, font_list: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """(frames uint8 [T, H, W, 3], audio float32 [N], ground truth) of one render of a recording.
    Every nuisance is drawn from (letter, voice, render)."""
    seed = int(hashlib.sha256(f"{recording.voice}/{recording.letter}/{render_index}".encode()).hexdigest()[:12], 16)
    rng = np.random.default_rng(seed)
    speech = trimmed_speech(recording.path)
    duration = len(speech) / SAMPLE_RATE
    spans = utterance_spans(duration, rng)
    shown = [(start, start + GLYPH_SECONDS) for start, _ in spans]
    audio = rng.normal(0, 0.5 * 10 ** (NOISE_DB / 20), int(round(VIDEO_SECONDS * SAMPLE_RATE))).astype(np.float32)
    for start, _ in spans:
        first = int(round(start * SAMPLE_RATE))
        audio[first:first + len(speech)] += speech[:len(audio) - first]
    font = font_list[int(rng.integers(len(font_list)))]
    mask = glyph_mask(recording.letter, font, int(rng.integers(int(0.55 * HEIGHT), int(0.85 * HEIGHT))),
                      float(rng.uniform(-MAX_TILT, MAX_TILT)))
    bg = background(rng)
    colour = letter_colour(bg, rng)
    h, w = mask.shape
    x0, y0 = place(rng, w, WIDTH, 0.1), place(rng, h, HEIGHT, 0.05)
    vx, vy = rng.uniform(-12, 12, 2)  # px / s drift while on screen
    frames = np.empty((int(round(VIDEO_SECONDS * FPS)), HEIGHT, WIDTH, 3), dtype=np.uint8)
    for k in range(len(frames)):
        t = k / FPS
        frame = bg.copy()
        for start, end in shown:
            if start <= t < end:
                paste(frame, mask, colour, x0 + vx * (t - start), y0 + vy * (t - start))
        frames[k] = np.clip(frame + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8)
    truth = {"letter": recording.letter, "voice": recording.voice, "render": render_index, "font": os.path.basename(font),
             "speech": [list(span) for span in spans], "glyph": [list(span) for span in shown]}
    return frames, audio, truth


def utterance_spans(duration: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(start, end) in seconds of the PLAYS utterances of `duration` s: one in each slot of the video,
    starting uniformly between the slot's start and GLYPH_SECONDS before its end (so that the glyph
    stays in its slot), whatever `duration` is. A recording longer than what is left of its slot runs
    on into the next (or is cut at the end of the video)."""
    slot = VIDEO_SECONDS / PLAYS
    starts = [slot * k + rng.uniform(0.0, slot - GLYPH_SECONDS) for k in range(PLAYS)]
    return [(float(start), min(float(start) + duration, VIDEO_SECONDS)) for start in starts]


def place(rng: np.random.Generator, extent: int, room: int, margin: float) -> float:
    """Where a glyph `extent` px long starts along a side of `room` px: uniform with `margin` of the side
    kept clear at both ends, or centred when the glyph is too long for that."""
    low, high = margin * room, (1 - margin) * room - extent
    return float(rng.uniform(low, high)) if high > low else (room - extent) / 2


def paste(frame: np.ndarray, mask: np.ndarray, colour: np.ndarray, x: float, y: float) -> None:
    """Blend `colour` into `frame` [H, W, 3] through `mask` [h, w] placed at (x, y), clipped to the frame."""
    top, left = int(round(y)), int(round(x))
    h, w = mask.shape
    y0, y1, x0, x1 = max(0, top), min(HEIGHT, top + h), max(0, left), min(WIDTH, left + w)
    if y1 <= y0 or x1 <= x0:
        return
    alpha = mask[y0 - top:y1 - top, x0 - left:x1 - left, None]
    frame[y0:y1, x0:x1] = (1 - alpha) * frame[y0:y1, x0:x1] + alpha * colour


def _write_one(job: tuple[Recording, int, str, list[str]]) -> dict:
    """Render one video to `path` (a finished file is kept: the same job renders the same video, and
    the truth is rendered again without encoding) and return its ground truth."""
    from avssl.media.writer import write_media

    recording, render_index, path, font_list = job
    frames, audio, truth = render(recording, render_index, font_list)
    if not os.path.isfile(path):
        tmp = path + ".tmp.mp4"
        write_media(tmp, frames, FPS, audio, SAMPLE_RATE, gop=FPS)
        os.replace(tmp, path)
    return {"path": path, **truth}


def train_render_indices(train_renders: int) -> list[int]:
    """The render indices of the pretraining videos: 0, then 2..N (render 1 is the test render)."""
    if train_renders < 1:
        raise UsageError(f"--train-renders must be at least 1, got {train_renders}")
    return [0] + list(range(2, train_renders + 1))


def build_letters(cache_dir: str, workers: int = 2, train_renders: int = 1) -> dict[str, str]:
    """Render the letters world into `cache_dir/letters-v{FORMAT_VERSION}` (each render once; a later
    call reuses the files it finds) and probe it into manifests. Returns {"train": manifest, "test":
    manifest, "truth": json}: `label` is the letter, `group` the voice, `split` train or test; the
    train manifest holds `train_renders` renders of every (letter, voice) pair, the test one render 1."""
    root = fetch_klettres(cache_dir)
    recordings = find_recordings(root)
    out = os.path.join(cache_dir, f"letters-v{FORMAT_VERSION}")
    suffix = "" if train_renders == 1 else f"-{train_renders}"
    indices = {"train": train_render_indices(train_renders), "test": [TEST_RENDER]}
    paths = {"train": os.path.join(out, f"train{suffix}.csv"), "test": os.path.join(out, "test.csv"),
             "truth": os.path.join(out, f"truth{suffix}.json")}
    if all(os.path.isfile(p) for p in paths.values()):
        return paths
    os.makedirs(out, exist_ok=True)
    font_list = fonts()
    jobs = [(r, k, os.path.join(out, f"r{k}_{r.voice}_{r.letter}.mp4"), font_list)
            for k in sorted(indices["train"] + indices["test"]) for r in recordings]
    truth = _run_jobs(jobs, workers)
    for name, wanted in indices.items():
        rows = [t for t in truth if t["render"] in wanted]
        files = [t["path"] for t in rows]
        labels = {t["path"]: (t["letter"], name, t["voice"]) for t in rows}
        build_manifest(files, probe_paths(files, workers=workers, progress=False), labels).save(paths[name])
    with open(paths["truth"], "w", encoding="utf-8") as f:
        json.dump({"format": FORMAT_VERSION, "files": truth}, f, indent=1)
    return paths


def _run_jobs(jobs: list, workers: int) -> list[dict[str, Any]]:
    if workers <= 1:
        return [_write_one(job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_write_one, jobs, chunksize=8))
