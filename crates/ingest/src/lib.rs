//! Feed fetching, parsing, normalisation, deduplication, topic tagging, story clustering and scheduling.

pub mod cluster;
pub mod config;
pub mod eval;
pub mod fetch;
pub mod guard;
pub mod normalize;
pub mod parse;
pub mod pipeline;
pub mod policy;
pub mod scheduler;
pub mod text;
pub mod topics;
pub mod websub;
