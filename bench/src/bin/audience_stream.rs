//! Streams the devices targeted by a topic over a seeded PostgreSQL audience and reports
//! rows/s and peak RSS: the fan-out's read path must stay bounded whatever the audience.
//!
//! cargo run --release -p herald-bench --bin audience_stream -- --devices 1000000

use clap::Parser;
use futures::TryStreamExt;
use herald_bench::{peak_rss_kib, rss_kib};
use herald_store::devices;
use herald_store::testing::{SeedAudience, TestDb};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Devices to seed (4 per reader).
    #[arg(long, default_value_t = 1_000_000)]
    devices: u64,
    /// Keyset page size.
    #[arg(long, default_value_t = 1_000)]
    batch: u64,
    /// PostgreSQL to seed a throwaway schema in.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    database_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let test_db = TestDb::postgres(&args.database_url).await;
    let db = test_db.connect().await;
    let users = args.devices.div_ceil(4);
    eprintln!("seeding {users} readers with 4 devices each …");
    let seeding = Instant::now();
    test_db
        .seed_audience(
            &db,
            &SeedAudience {
                users,
                devices_per_user: 4,
                topic: "world",
                endpoint_base: "https://push.example/",
                p256dh: &[4; 65],
                auth: &[1; 16],
            },
        )
        .await;
    eprintln!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    let rss_before = rss_kib().unwrap_or(0);
    let started = Instant::now();
    let mut rows = 0u64;
    let mut pages = std::pin::pin!(devices::targeted(&db, vec!["world".into()], args.batch));
    while let Some(page) = pages.try_next().await? {
        rows += page.len() as u64;
        if rows % 100_000 < args.batch {
            eprint!("\rstreamed {rows} / {} devices", users * 4);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!();
    println!("devices streamed: {rows}");
    println!("time: {elapsed:.2} s");
    println!("rows/s: {:.0}", rows as f64 / elapsed);
    println!("RSS before streaming: {} MiB", rss_before / 1024);
    println!("peak RSS: {} MiB", peak_rss_kib().unwrap_or(0) / 1024);
    Ok(())
}
