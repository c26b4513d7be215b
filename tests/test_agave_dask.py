"""agave:// under Dask: CSVs read by process workers of a LocalCluster."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_dask_dataframe_on_process_workers(agave_emulator, agave_fs, agave_dir):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    _, url = agave_emulator
    path, disk = agave_dir
    for part in range(4):
        rows = "\n".join(f"{part},{i},{part * 100 + i}" for i in range(50))
        (disk / f"part-{part}.csv").write_text("part,i,value\n" + rows + "\n")
    options = {"base_url": url, "username": "demo", "password": "demo"}
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        frame = dd.read_csv(f"agave://{path}/part-*.csv", storage_options=options)
        assert frame.npartitions == 4
        total = frame["value"].sum().compute()
        pids = client.run(lambda: __import__("os").getpid())
    assert total == sum(part * 100 + i for part in range(4) for i in range(50))
    assert len(set(pids.values())) == 2
