"""unit2av.pipeline.models.ModelCache: one load per key, least recently used models dropped with ``keep``."""

from __future__ import annotations

import os
import shutil

from conftest import SHARED

from unit2av.pipeline.models import ModelCache

UTUT_DICT = SHARED / "fixtures" / "utut" / "dict.txt"


def test_keep_bounds_the_cache_and_unbounded_keeps_all(utut_ckpt, tmp_path):
    other_dict = tmp_path / "dict.txt"
    shutil.copyfile(UTUT_DICT, other_dict)  # same content, another file: another key
    for keep, loads_after in ((None, 2), (1, 3)):
        cache = ModelCache(keep=keep)
        first = cache.translator(utut_ckpt, UTUT_DICT, "cpu")
        assert cache.translator(utut_ckpt, UTUT_DICT, "cpu") is first and cache.loads == 1
        cache.translator(utut_ckpt, other_dict, "cpu")
        again = cache.translator(utut_ckpt, UTUT_DICT, "cpu")
        assert cache.loads == loads_after
        assert (again is first) == (keep is None)  # keep=1 dropped it when the other dictionary came


def test_a_replaced_file_is_loaded_again(utut_ckpt, tmp_path):
    ckpt = tmp_path / "utut.pt"
    shutil.copyfile(utut_ckpt, ckpt)
    cache = ModelCache()
    first = cache.translator(ckpt, UTUT_DICT, "cpu")
    st = ckpt.stat()  # the file is replaced: a new modification time
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert cache.translator(ckpt, UTUT_DICT, "cpu") is not first and cache.loads == 2
