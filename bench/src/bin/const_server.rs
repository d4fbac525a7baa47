//! The ceiling for the reader-API benchmark: an axum server that answers every GET with the
//! same JSON body (the bytes of a real `/v1/articles` response, from a file), so `wrk` against it
//! measures what this machine's HTTP stack and loopback allow with no work behind the route.
//!
//! cargo run --release -p herald-bench --bin const_server -- --body list.json --listen 127.0.0.1:18090

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The body to answer with.
    #[arg(long)]
    body: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18090")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let body = Bytes::from(std::fs::read(&args.body)?);
    let size = body.len();
    let answer = move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body) }
    };
    let app = Router::new()
        .route("/", get(answer.clone()))
        .route("/{*path}", get(answer));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "answering every GET on http://{} with {size} bytes",
        args.listen
    );
    axum::serve(listener, app).await?;
    Ok(())
}
