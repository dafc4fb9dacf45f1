//! One module per command: arguments in, a library call, output out.

pub(crate) mod count;
pub(crate) mod dataset;
pub(crate) mod detectors;
pub(crate) mod diagnose;
pub(crate) mod diff;
pub(crate) mod export;
pub(crate) mod filters;
pub(crate) mod grep;
pub(crate) mod index;
pub(crate) mod number_args;
pub(crate) mod overview;
pub(crate) mod query;
pub(crate) mod run;
pub(crate) mod search;
pub(crate) mod sql;
pub(crate) mod view;
