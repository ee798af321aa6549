"""Dataset adapters on tiny fake trees written in each dataset's official layout (files are empty)."""

from __future__ import annotations

import os

import pytest

from avssl.data.adapters import ADAPTERS, get_adapter
from avssl.data.adapters.esc50 import fold_split
from avssl.data.manifest import Manifest
from avssl.errors import UsageError


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _by_name(entries):
    return {os.path.basename(e.path): e for e in entries}


# UCF101 -----------------------------------------------------------------------------------------
UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]


@pytest.fixture
def ucf_root(tmp_path):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\r\n" for i, c in enumerate(UCF_CLASSES, 1)))
    for split, test_groups in ((1, range(1, 8)), (2, range(8, 15))):
        train, test = [], []
        for index, cls in enumerate(UCF_CLASSES, 1):
            file_cls = "HandStandPushups" if cls == "HandstandPushups" else cls  # the real lists' spelling
            for group in range(1, 16):
                for clip in (1, 2):
                    rel = f"{cls}/v_{file_cls}_g{group:02d}_c{clip:02d}.avi"
                    _touch(tmp_path / "UCF-101" / rel)
                    (test if group in test_groups else train).append(rel if group in test_groups else f"{rel} {index}")
        (lists / f"trainlist0{split}.txt").write_text("\n".join(train) + "\n")
        (lists / f"testlist0{split}.txt").write_text("\n".join(test) + "\n")
    return tmp_path


def test_ucf101_labels_splits_and_groups(ucf_root):
    entries = get_adapter("ucf101")(str(ucf_root), 1)
    assert len(entries) == 3 * 15 * 2
    by_name = _by_name(entries)
    e = by_name["v_HandStandPushups_g03_c02.avi"]
    assert (e.label, e.split, e.group) == ("HandstandPushups", "test", "v_HandStandPushups_g03")
    assert e.path == str(ucf_root / "UCF-101" / "HandstandPushups" / "v_HandStandPushups_g03_c02.avi")
    e = by_name["v_YoYo_g08_c01.avi"]
    assert (e.label, e.split, e.group) == ("YoYo", "train", "v_YoYo_g08")
    assert sum(e.split == "test" for e in entries) == 3 * 7 * 2
    assert [e.path for e in entries] == sorted(e.path for e in entries)


@pytest.mark.parametrize("split", [1, 2])
def test_ucf101_no_test_group_appears_in_train(ucf_root, split):
    entries = get_adapter("ucf101")(str(ucf_root), split)
    train = {e.group for e in entries if e.split == "train"}
    test = {e.group for e in entries if e.split == "test"}
    assert test and train and not train & test


def test_ucf101_needs_a_valid_split_and_its_files(ucf_root):
    with pytest.raises(UsageError, match="ucf101 needs --split N"):
        get_adapter("ucf101")(str(ucf_root), None)
    with pytest.raises(UsageError, match="--split 4 is not one of 1, 2, 3"):
        get_adapter("ucf101")(str(ucf_root), 4)
    with pytest.raises(UsageError, match=r"trainlist03\.txt: UCF101 split file not found"):
        get_adapter("ucf101")(str(ucf_root), 3)


def test_ucf101_label_mismatch_names_the_line(ucf_root):
    listing = ucf_root / "ucfTrainTestlist" / "trainlist01.txt"
    lines = listing.read_text().splitlines()
    lines[1] = lines[1].rsplit(" ", 1)[0] + " 3"
    listing.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=r"trainlist01\.txt:2: .* in folder 'ApplyEyeMakeup' but labelled 'YoYo'"):
        get_adapter("ucf101")(str(ucf_root), 1)


# HMDB51 -----------------------------------------------------------------------------------------
def test_hmdb51_train_test_unused_and_groups(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    videos = {
        "brush_hair": [("April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 1), ("April_09_brush_hair_u_nm_np1_ba_goo_1.avi", 1),
                       ("Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0.avi", 2),
                       ("Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi", 0)],
        "cartwheel": [("Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0.avi", 2),
                      ("Cartwheel_Tutorial_cartwheel_f_cm_np1_ri_med_3.avi", 1)],
    }
    for cls, items in videos.items():
        for name, _ in items:
            _touch(tmp_path / "hmdb51_org" / cls / name)
        (splits / f"{cls}_test_split1.txt").write_text("".join(f"{n} {i} \n" for n, i in items))
        (splits / f"{cls}_test_split2.txt").write_text("".join(f"{n} {3 - i if i else 0} \n" for n, i in items))
    entries = get_adapter("hmdb51")(str(tmp_path), 1)
    by_name = _by_name(entries)
    assert len(entries) == 6
    e = by_name["April_09_brush_hair_u_nm_np1_ba_goo_1.avi"]
    assert (e.label, e.split, e.group) == ("brush_hair", "train", "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo")
    assert by_name["April_09_brush_hair_u_nm_np1_ba_goo_0.avi"].group == e.group
    assert by_name["Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi"].split == "unused"
    assert by_name["Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0.avi"].split == "test"
    assert os.path.isfile(e.path)
    split2 = _by_name(get_adapter("hmdb51")(str(tmp_path), 2))
    assert split2["Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0.avi"].split == "train"
    (splits / "cartwheel_test_split1.txt").write_text("Cartwheel_Tutorial_cartwheel_f_cm_np1_ri_med_3.avi 7\n")
    with pytest.raises(UsageError, match=r"cartwheel_test_split1\.txt:1: expected '<video>\.avi <0\|1\|2>'"):
        get_adapter("hmdb51")(str(tmp_path), 1)


# ESC-50 -----------------------------------------------------------------------------------------
ESC_ROWS = [("1-100032-A-0.wav", 1, 0, "dog", "True", 100032, "A"),
            ("1-100038-A-14.wav", 1, 14, "chirping_birds", "False", 100038, "A"),
            ("2-100648-A-43.wav", 2, 43, "chainsaw", "False", 100648, "A"),
            ("2-100648-B-43.wav", 2, 43, "chainsaw", "False", 100648, "B"),
            ("5-9032-A-0.wav", 5, 0, "dog", "True", 9032, "A")]


def test_esc50_fold_as_split_group_as_source_and_test_fold_choice(tmp_path):
    (tmp_path / "meta").mkdir()
    lines = ["filename,fold,target,category,esc10,src_file,take"] + [",".join(map(str, r)) for r in ESC_ROWS]
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    entries = get_adapter("esc50")(str(tmp_path))
    assert [(os.path.basename(e.path), e.label, e.split, e.group) for e in entries] == [
        ("1-100032-A-0.wav", "dog", "1", "100032"), ("1-100038-A-14.wav", "chirping_birds", "1", "100038"),
        ("2-100648-A-43.wav", "chainsaw", "2", "100648"), ("2-100648-B-43.wav", "chainsaw", "2", "100648"),
        ("5-9032-A-0.wav", "dog", "5", "9032")]
    assert entries[0].path == str(tmp_path / "audio" / "1-100032-A-0.wav")
    manifest = Manifest.from_rows([{"path": e.path, "duration": 5.0, "has_audio": True, "label": e.label,
                                    "split": e.split, "group": e.group} for e in entries])
    assert fold_split(manifest, 2).strings("split").tolist() == ["train", "train", "test", "test", "train"]
    assert manifest.filter("audio", split=5)[0].label == "dog"
    with pytest.raises(UsageError, match="takes no --split"):
        get_adapter("esc50")(str(tmp_path), 1)
    with pytest.raises(UsageError, match="1-5"):
        fold_split(manifest, 6)


# Kinetics-Sounds --------------------------------------------------------------------------------
def test_kinetics_sounds_class_list_over_kinetics_layout(tmp_path):
    files = ["train/playing bagpipes/ab_c-D_000010_000020.mp4", "train/playing_drums/xyz123_000000_000010.mp4",
             "train/reading book/q1_000005_000015.mp4", "val/Playing Bagpipes/k-9_X_000030_000040.mp4",
             "val/playing drums/xyz123_000050_000060.mp4"]
    for rel in files:
        _touch(tmp_path / "kinetics" / rel)
    (tmp_path / "kinetics" / "train" / "playing_drums" / "notes.txt").write_text("not a video")
    (tmp_path / "classes.txt").write_text("playing bagpipes\nplaying drums\n")
    entries = get_adapter("kinetics-sounds")(str(tmp_path / "kinetics"), class_list=str(tmp_path / "classes.txt"))
    got = sorted((os.path.basename(e.path), e.label, e.split, e.group) for e in entries)
    assert got == [("ab_c-D_000010_000020.mp4", "playing bagpipes", "train", "ab_c-D"),
                   ("k-9_X_000030_000040.mp4", "playing bagpipes", "val", "k-9_X"),
                   ("xyz123_000000_000010.mp4", "playing drums", "train", "xyz123"),
                   ("xyz123_000050_000060.mp4", "playing drums", "val", "xyz123")]
    with pytest.raises(UsageError, match="needs --class-list"):
        get_adapter("kinetics-sounds")(str(tmp_path / "kinetics"))
    (tmp_path / "classes.txt").write_text("playing bagpipes\nplaying harp\n")
    with pytest.raises(UsageError, match="without a folder: playing harp"):
        get_adapter("kinetics-sounds")(str(tmp_path / "kinetics"), class_list=str(tmp_path / "classes.txt"))


# VGG-Sound --------------------------------------------------------------------------------------
def test_vggsound_rows_with_default_and_custom_templates(tmp_path):
    (tmp_path / "vggsound.csv").write_text(
        '---g-f_I2yQ,1,"people marching",test\n--0PQM4-hqg,30,"waterfall burbling",train\n'
        '-0BKyt8iZ1I,0,"playing bass guitar, electric",train\n')
    entries = get_adapter("vggsound")(str(tmp_path))
    assert [(os.path.relpath(e.path, tmp_path), e.label, e.split, e.group) for e in entries] == [
        ("video/---g-f_I2yQ_000001.mp4", "people marching", "test", "---g-f_I2yQ"),
        ("video/--0PQM4-hqg_000030.mp4", "waterfall burbling", "train", "--0PQM4-hqg"),
        ("video/-0BKyt8iZ1I_000000.mp4", "playing bass guitar, electric", "train", "-0BKyt8iZ1I")]
    custom = get_adapter("vggsound")(str(tmp_path), name_template="{split}/{ytid}_{start}_{end}.mkv")
    assert os.path.relpath(custom[0].path, tmp_path) == "test/---g-f_I2yQ_1_11.mkv"
    with pytest.raises(UsageError, match=r"--name-template '\{id\}\.mp4'"):
        get_adapter("vggsound")(str(tmp_path), name_template="{id}.mp4")


# folder per class and the registry --------------------------------------------------------------
def test_folder_per_class_labels_by_top_folder(tmp_path):
    for rel in ["dog/a.wav", "dog/outdoor/b.mp4", "rain/c.ogg", "rain/readme.md"]:
        _touch(tmp_path / rel)
    entries = get_adapter("folder")(str(tmp_path))
    assert [(os.path.relpath(e.path, tmp_path), e.label, e.split, e.group) for e in entries] == [
        ("dog/a.wav", "dog", "", ""), ("dog/outdoor/b.mp4", "dog", "", ""), ("rain/c.ogg", "rain", "", "")]


def test_registry_names_and_unknown_dataset():
    assert set(ADAPTERS) == {"ucf101", "hmdb51", "esc50", "kinetics-sounds", "vggsound", "folder"}
    with pytest.raises(UsageError, match="unknown dataset 'ucf-101'; known: ucf101, hmdb51"):
        get_adapter("ucf-101")
