//! Every public handle can cross threads.

use tickertable::{
    DynamicTableWriter, Engine, EngineHandle, Error, Event, ListenerHandle, RowWriter, Table,
    TablePublisher, TableSnapshot, TableUpdate, TryPublishError,
};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}
fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn smoke() {
    assert_send_sync::<Engine>();
}

#[test]
fn engine_and_its_handle_are_send_and_sync() {
    assert_send_sync::<Engine>();
    assert_send_sync::<EngineHandle>();
}

#[test]
fn tables_and_snapshots_are_send_and_sync() {
    assert_send_sync::<Table>();
    assert_send_sync::<TableSnapshot>();
    assert_send_sync::<TableUpdate>();
}

#[test]
fn writers_are_send_and_shared_writers_are_sync() {
    assert_send_sync::<TablePublisher>();
    assert_send_sync::<DynamicTableWriter>();
    assert_send::<RowWriter>();
}

#[test]
fn consumers_are_send_and_sync() {
    assert_send_sync::<tickertable::Subscription>();
    assert_send_sync::<ListenerHandle>();
    assert_send_sync::<Event>();
}

#[test]
fn flight_handles_are_send_and_sync() {
    use tickertable::flight::{Client, CreateTable, FlightServer, FlightStats, FlightStatsHandle};
    assert_send_sync::<FlightServer>();
    assert_send_sync::<FlightStatsHandle>();
    assert_send_sync::<FlightStats>();
    assert_send_sync::<CreateTable>();
    assert_send_sync::<Client>();
    assert_send_sync::<tickertable::TableStats>();
}

#[test]
fn errors_are_send_sync_and_static() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_send_sync::<Error>();
    assert_error::<Error>();
    assert_send::<TryPublishError<arrow_array::RecordBatch>>();
    assert_sync::<TryPublishError<arrow_array::RecordBatch>>();
}

#[test]
fn handles_move_to_other_threads() {
    let engine = tickertable::test_util::manual_engine();
    let handle = engine.handle();
    let (table, publisher) = engine
        .table_publisher(
            "t",
            tickertable::test_util::int_schema(),
            tickertable::PublisherOptions::default(),
        )
        .unwrap();
    let sub = table.subscribe().unwrap();
    std::thread::spawn(move || {
        publisher
            .add(tickertable::test_util::int_batch([1, 2]))
            .unwrap();
        handle.run_cycle();
    })
    .join()
    .unwrap();
    let snapshot = std::thread::spawn(move || table.snapshot()).join().unwrap();
    assert_eq!(snapshot.num_rows(), 2);
    let events = std::thread::spawn(move || {
        let mut n = 0;
        while sub.try_recv().is_ok() {
            n += 1;
        }
        n
    })
    .join()
    .unwrap();
    assert_eq!(events, 2);
    drop(engine);
}
