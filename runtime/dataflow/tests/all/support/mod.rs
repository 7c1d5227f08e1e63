//! Shared by the integration tests: reading the Arrow IPC files back.
#![allow(dead_code)]

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray, MapArray, RecordBatch, StringArray};
use arrow::ipc::reader::StreamReader;

/// Every row of every finished file of one signal, in file-name order.
pub fn read_signal(dir: &Path, signal: &str) -> Vec<RecordBatch> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join(signal))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "arrows"));
    files.sort();
    let mut batches = Vec::new();
    for file in files {
        let reader = StreamReader::try_new(File::open(&file).expect("open"), None).expect("an Arrow IPC stream");
        for batch in reader {
            batches.push(batch.unwrap_or_else(|e| panic!("{}: {e}", file.display())));
        }
    }
    batches
}

/// As [`read_signal`], also reading the file still being written (`.part`)
/// up to its last complete batch.
pub fn read_signal_live(dir: &Path, signal: &str) -> Vec<RecordBatch> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join(signal))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut batches = Vec::new();
    for file in files {
        let Ok(handle) = File::open(&file) else { continue };
        let Ok(reader) = StreamReader::try_new(handle, None) else { continue };
        batches.extend(reader.map_while(Result::ok));
    }
    batches
}

pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// A string column of all batches.
pub fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let array: &StringArray = b.column_by_name(column).expect(column).as_string();
            (0..array.len()).map(|i| array.is_valid(i).then(|| array.value(i).to_string())).collect::<Vec<_>>()
        })
        .collect()
}

/// The value of `key` in a `Map<Utf8, Utf8>` column, per row.
pub fn map_values(batches: &[RecordBatch], column: &str, key: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for batch in batches {
        let map: &MapArray = batch.column_by_name(column).expect(column).as_map();
        for row in 0..map.len() {
            let entries = map.value(row);
            let keys: &StringArray = entries.column(0).as_string();
            let values: &StringArray = entries.column(1).as_string();
            let found = (0..keys.len()).find(|i| keys.value(*i) == key).map(|i| values.value(i).to_string());
            out.push(found);
        }
    }
    out
}
