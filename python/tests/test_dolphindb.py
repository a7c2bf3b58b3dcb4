"""DolphinDB's MultithreadedTableWriter examples."""

from __future__ import annotations

import random
import threading

import pyarrow as pa
import pytest

import tickertable as tt

np = pytest.importorskip("numpy")


def tglobal(engine: tt.Engine, name: str = "tglobal") -> tt.Table:
    schema = {"date": pa.date32(), "ticker": pa.string(), "price": pa.int64()}
    return engine.dynamic_table_writer(name, schema).table


def test_ten_inserts_with_one_short_row_land_nine(engine: tt.Engine) -> None:
    table = tglobal(engine)
    writer = tt.MultithreadedTableWriter(
        table, batch_size=10, throttle=1, thread_count=5, partition_col="date"
    )
    errors = []
    for i in range(10):
        try:
            if i == 3:
                writer.insert(np.datetime64(f"2022-03-2{i % 6}"), random.randint(1, 10000))
            else:
                writer.insert(np.datetime64(f"2022-03-2{i % 6}"), "AAAA", random.randint(1, 10000))
        except tt.SchemaError as e:
            errors.append(e)
    status = writer.wait_for_thread_completion()
    engine.run_cycle()
    assert len(errors) == 1
    assert (errors[0].expected, errors[0].found) == (3, 2)
    assert "expected 3 columns, found 2" in str(errors[0])
    assert table.num_rows == 9
    assert status.sent_rows == 9 and status.succeed() and status.error_code == ""
    dates = table.snapshot().column("date").to_pylist()
    # Rows keep their order per partition (date), not across writer threads.
    assert sorted(str(d) for d in dates) == sorted(f"2022-03-2{i % 6}" for i in range(10) if i != 3)


def test_a_bad_type_raises_at_once_with_column_expected_and_found(engine: tt.Engine) -> None:
    table = tglobal(engine)
    writer = tt.MultithreadedTableWriter(table, thread_count=2)
    with pytest.raises(tt.SchemaError) as e:
        writer.insert(np.datetime64("2022-03-23"), 222, 5)
    assert (e.value.column, e.value.expected, e.value.found) == ("ticker", "string", "int64")
    with pytest.raises(tt.SchemaError) as e:
        writer.insert(np.datetime64("2022-03-23"), "AAAAAAAB", 1.5)
    assert (e.value.column, e.value.expected, e.value.found) == ("price", "int64", "double")
    writer.insert(np.datetime64("2022-03-23"), "AAAAAAAB", 7)
    status = writer.wait_for_thread_completion()
    engine.run_cycle()
    assert (status.sent_rows, table.num_rows) == (1, 1)


def test_ten_python_threads_through_five_writer_threads(engine: tt.Engine) -> None:
    schema = {"id": pa.int32(), "symbol": pa.string(), "value": pa.int64()}
    table = engine.dynamic_table_writer("pdatetest", schema).table
    writer = tt.MultithreadedTableWriter(
        table, batch_size=10000, throttle=1, thread_count=5, partition_col="id"
    )

    def insert_mtw() -> None:
        for _ in range(100):
            writer.insert(random.randint(1, 10000), "AAAAAAAB", random.randint(1, 10000))

    threads = [threading.Thread(target=insert_mtw) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status = writer.wait_for_thread_completion()
    engine.run_cycle()
    assert status.sent_rows == 1000
    assert len(status.thread_status) == 5
    assert sum(t.sent_rows for t in status.thread_status) == 1000
    assert all(t.unsent_rows == 0 and t.send_failed_rows == 0 for t in status.thread_status)
    assert table.num_rows == 1000
    assert "sentRows      : 1000" in repr(status)
    with pytest.raises(tt.WriterClosedError):
        writer.insert(1, "x", 2)


def test_unwritten_data_is_reinserted_through_a_new_writer(engine: tt.Engine) -> None:
    schema = {"id": pa.int32(), "symbol": pa.string(), "value": pa.int64()}
    dtw = engine.dynamic_table_writer("closing", schema)
    writer = tt.MultithreadedTableWriter(dtw.table, thread_count=3, partition_col="id", flush_mode="manual")
    for i in range(110):
        writer.insert(i, "AAAAAAAB", i * 10)
    dtw.close()  # the target goes away before anything is sent
    with pytest.raises(tt.WriterClosedError):
        writer.flush()
    # As in DolphinDB's workflow: wait for the threads, then take what they could not write
    # (flush raises at the first thread that gave up; others may still be failing).
    status = writer.wait_for_thread_completion()
    assert status.has_error()
    assert status.error_code == "table_closed"
    assert status.send_failed_rows + status.unsent_rows == 110
    unwritten = writer.get_unwritten_data()
    assert len(unwritten) == 110
    for row in unwritten:
        row[1] = "aaaaa"  # fix the data, as DolphinDB's example does
    other = engine.dynamic_table_writer("again", schema).table
    newwriter = tt.MultithreadedTableWriter(other, thread_count=5, partition_col="id")
    newwriter.insert_unwritten_data(unwritten)
    status = newwriter.wait_for_thread_completion()
    engine.run_cycle()
    assert status.sent_rows == 110 and status.succeed()
    snap = other.snapshot()
    assert snap.num_rows == 110
    assert set(snap.column("symbol").to_pylist()) == {"aaaaa"}
    assert sorted(snap.column("id").to_pylist()) == list(range(110))


def test_staging_full_gives_up_after_retries_and_keeps_the_rows() -> None:
    with tt.Engine(manual=True, staging_limit=5) as engine:
        table = engine.dynamic_table_writer("small", {"x": pa.int64()}).table
        writer = tt.MultithreadedTableWriter(
            table, batch_size=4, throttle=0.001, max_retries=0, flush_mode="manual"
        )
        for i in range(4):
            writer.insert(i)
        writer.flush()  # 4 rows staged
        for i in range(4, 8):
            writer.insert(i)
        with pytest.raises(tt.WriterClosedError):
            writer.flush()  # staging holds 4 of 5: no room, no retries left
        status = writer.wait_for_thread_completion()
        assert status.error_code == "staging_full"
        assert [t.send_failed_rows for t in status.thread_status] == [4]
        batches = writer.get_unwritten_batches()
        assert sum(b.num_rows for b in batches) == 4
        engine.run_cycle()
        retry = tt.MultithreadedTableWriter(table)
        retry.insert_unwritten_data(batches)
        retry.wait_for_thread_completion()
        engine.run_cycle()
        assert table.snapshot().column("x").to_pylist() == list(range(8))


def test_sync_mode_returns_once_published(engine: tt.Engine) -> None:
    table = engine.dynamic_table_writer("sync", {"x": pa.int64()}).table
    writer = tt.MultithreadedTableWriter(table, flush_mode="sync")
    writer.insert(1)
    assert writer.get_status().sent_rows == 1
    writer.wait_for_thread_completion()


def test_invalid_options_raise(engine: tt.Engine) -> None:
    table = tglobal(engine)
    with pytest.raises(tt.InvalidOptionError):
        tt.MultithreadedTableWriter(table, mode="upsert")
    with pytest.raises(tt.InvalidOptionError):
        tt.MultithreadedTableWriter(table, thread_count=0)
    with pytest.raises(tt.InvalidOptionError):
        tt.MultithreadedTableWriter(table, partition_col="nope")
    with pytest.raises(TypeError):
        tt.MultithreadedTableWriter("tglobal")


def test_wait_for_completion_then_sync_then_count_with_a_threaded_engine() -> None:
    # DolphinDB's documented workflow, on an engine whose cycle is a minute away: without
    # ``sync()`` the rows would not be visible yet.
    with tt.Engine(period=60) as engine:
        table = tglobal(engine, "threaded")
        writer = tt.MultithreadedTableWriter(table, batch_size=7, thread_count=3, partition_col="ticker")
        for i in range(100):
            writer.insert(np.datetime64("2022-03-20"), f"T{i % 5}", i)
        status = writer.wait_for_thread_completion()
        assert status.sent_rows == 100
        step = engine.sync()
        assert table.num_rows == 100
        assert engine.step >= step
        assert engine.wait_for_step(step, timeout=0)
        # A step far ahead is not reached within a short wait.
        assert not engine.wait_for_step(step + 1000, timeout=0.05)
        with pytest.raises(ValueError, match="timeout"):
            engine.wait_for_step(step, timeout=-1)
