"""fsspec's own conformance suite (fsspec/tests/abstract) run on agave:// over the emulator."""

from __future__ import annotations

import itertools

import fsspec.tests.abstract as abstract
import pytest
from conftest import make_agave_fs

_counter = itertools.count()


@pytest.fixture(scope="module")
def shared_fs(agave_emulator):
    _, url = agave_emulator
    return make_agave_fs(url)


class AgaveFixtures(abstract.AbstractFixtures):
    @pytest.fixture
    def fs(self, shared_fs):
        return shared_fs

    @pytest.fixture
    def fs_path(self, fs):
        path = f"cic.storage/demo/abstract-{next(_counter)}"
        fs.makedirs(path, exist_ok=True)
        yield path
        fs.rm(path, recursive=True)

    @pytest.fixture
    def supports_empty_directories(self):
        return True


class TestAgaveCopy(abstract.AbstractCopyTests, AgaveFixtures):
    pass


class TestAgaveGet(abstract.AbstractGetTests, AgaveFixtures):
    pass


class TestAgavePut(abstract.AbstractPutTests, AgaveFixtures):
    pass


class TestAgavePipe(abstract.AbstractPipeTests, AgaveFixtures):
    pass


class TestAgaveOpen(abstract.AbstractOpenTests, AgaveFixtures):
    pass
