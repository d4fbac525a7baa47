//! Runs the story-clustering evaluation: `herald-eval-clustering --csv FILE [--seeds 11,12,13,14,15] [--threshold T] [--merge M|none] [--near-duplicate J] [--set NAME=VALUE]...`
//! (`--set` takes any `ClusterConfig` field by name, e.g. `--set bigram_weight=0.5`).
//! `--explain SEED` prints an error analysis of one seed instead (clusters of at least
//! `--explain-min N` headlines with their true-story make-up, then how each true story was split).

use std::process::ExitCode;

use herald_ingest::cluster::ClusterConfig;
use herald_ingest::eval::{evaluate_clustering_with, explain_seed};

fn main() -> ExitCode {
    let mut csv = String::from("../shared/data/news-stories-dev.csv");
    let mut seeds: Vec<u64> = vec![11, 12, 13, 14, 15];
    let mut config = ClusterConfig::default();
    let mut explain: Option<u64> = None;
    let mut explain_min = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let parsed = match (arg.as_str(), value) {
            ("--csv", Some(v)) => {
                csv = v;
                Ok(())
            }
            ("--seeds", Some(v)) => v
                .split(',')
                .map(|s| s.trim().parse::<u64>())
                .collect::<Result<Vec<_>, _>>()
                .map(|s| seeds = s)
                .map_err(|e| e.to_string()),
            ("--explain", Some(v)) => v
                .parse()
                .map(|s| explain = Some(s))
                .map_err(|e| format!("{e}")),
            ("--explain-min", Some(v)) => v
                .parse()
                .map(|n| explain_min = n)
                .map_err(|e| format!("{e}")),
            ("--threshold", Some(v)) => v
                .parse()
                .map(|t| config.threshold = t)
                .map_err(|e| format!("{e}")),
            ("--merge", Some(v)) if v == "none" => {
                config.merge_threshold = None;
                Ok(())
            }
            ("--merge", Some(v)) => v
                .parse()
                .map(|m| config.merge_threshold = Some(m))
                .map_err(|e| format!("{e}")),
            ("--near-duplicate", Some(v)) => v
                .parse()
                .map(|j| config.near_duplicate_jaccard = j)
                .map_err(|e| format!("{e}")),
            ("--set", Some(v)) => match v.split_once('=') {
                Some((name, value)) => config.set(name.trim(), value.trim()),
                None => Err(format!("--set expects NAME=VALUE, got {v:?}")),
            },
            (other, _) => Err(format!("unknown or incomplete argument {other}")),
        };
        if let Err(e) = parsed {
            eprintln!("error: {e}");
            eprintln!(
                "usage: herald-eval-clustering --csv FILE [--seeds 11,12,13] [--threshold T] [--merge M|none] [--near-duplicate J] [--set NAME=VALUE]... [--explain SEED [--explain-min N]]"
            );
            return ExitCode::from(2);
        }
    }
    if let Some(seed) = explain {
        return match explain_seed(&csv, seed, &config, explain_min) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match evaluate_clustering_with(&csv, &seeds, &config) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
