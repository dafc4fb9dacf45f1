#![allow(missing_docs)]
//! halo-sql end to end: answers checked against the index rollups, the derived tables, the
//! sandbox, the tool description and the Parquet export.

mod attributes;
mod common;
mod export;
mod queries;
mod sandbox;
