//! Shared helpers: generate a labelled dataset, index it, diagnose it.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use halo_index::{Dataset, NoProgress, OpenOptions};
use halo_testkit::generate::{write_dataset, FailureMode, GeneratorConfig, OutputFormat};

/// A generated dataset on disk with its labels.
pub struct Generated {
    pub path: PathBuf,
    pub labels: BTreeMap<String, Vec<String>>,
}

pub fn generate(dir: &Path, name: &str, cfg: &GeneratorConfig, format: OutputFormat) -> Generated {
    let path = dir.join(name);
    let file = BufWriter::new(std::fs::File::create(&path).expect("create data file"));
    let summary = write_dataset(cfg, format, file).expect("generate");
    let mut labels = BTreeMap::new();
    for m in FailureMode::ALL {
        labels.insert(
            m.as_str().to_string(),
            summary.labels.modes.get(&m).cloned().unwrap_or_default(),
        );
    }
    labels.insert("clean".to_string(), summary.labels.clean.clone());
    Generated { path, labels }
}

pub fn open(dir: &Path, paths: &[PathBuf]) -> Dataset {
    let options = OpenOptions {
        index_dir: Some(dir.join("index")),
        ..OpenOptions::default()
    };
    Dataset::open(paths, &options, &NoProgress).expect("open dataset")
}
