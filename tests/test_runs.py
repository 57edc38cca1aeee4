"""The run folder's one numbering rule: one more than any version there (Lightning's own)."""

from lightning_cv.runs import next_version


def test_a_new_version_is_one_more_than_any_there_and_never_an_old_one(tmp_path):
    assert next_version(tmp_path / "cv") == tmp_path / "cv" / "version_0"
    for name in ("version_0", "version_3", "version_x", "notes"):
        (tmp_path / "cv" / name).mkdir(parents=True)
    assert next_version(tmp_path / "cv") == tmp_path / "cv" / "version_4"  # not the free 1
