"""fsspec's conformance suite on edito:// over the emulated EDITO stack (as s3fs runs it)."""

from __future__ import annotations

import itertools

import fsspec.tests.abstract as abstract
import pytest
from conftest import make_edito_fs

_counter = itertools.count()


@pytest.fixture(scope="module")
def shared_edito_fs(edito_emulator):
    return make_edito_fs(edito_emulator)


class EditoFixtures(abstract.AbstractFixtures):
    @pytest.fixture
    def fs(self, shared_edito_fs):
        shared_edito_fs.invalidate_cache()
        return shared_edito_fs

    @pytest.fixture
    def fs_path(self, fs):
        path = f"oidc-demo/abstract-{next(_counter)}"
        yield path
        if fs.exists(path):
            fs.rm(path, recursive=True)

    @pytest.fixture
    def supports_empty_directories(self):
        return False


class TestEditoCopy(abstract.AbstractCopyTests, EditoFixtures):
    pass


class TestEditoGet(abstract.AbstractGetTests, EditoFixtures):
    pass


class TestEditoPut(abstract.AbstractPutTests, EditoFixtures):
    pass


class TestEditoPipe(abstract.AbstractPipeTests, EditoFixtures):
    pass


class TestEditoOpen(abstract.AbstractOpenTests, EditoFixtures):
    pass
