//! Prints the Markdown report (or `--json`) of a dataset, before the CLI is wired:
//! `cargo run -p halo-diagnose --example report -- TRACES... [--json] [--summary]`.

use std::path::PathBuf;

use halo_diagnose::{diagnose, render_markdown, render_summary, DiagnoseOptions};
use halo_index::{Dataset, NoProgress, OpenOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let paths: Vec<PathBuf> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let ds = Dataset::open(&paths, &OpenOptions::default(), &NoProgress)?;
    let started = std::time::Instant::now();
    let d = diagnose(&ds, &DiagnoseOptions::default())?;
    eprintln!("diagnosed in {:.3} s", started.elapsed().as_secs_f64());
    if args.iter().any(|a| a == "--json") {
        println!("{}", d.to_json());
    } else if args.iter().any(|a| a == "--summary") {
        print!("{}", render_summary(&d, 15, None));
    } else {
        print!("{}", render_markdown(&d));
    }
    Ok(())
}
