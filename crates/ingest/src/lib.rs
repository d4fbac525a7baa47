//! Feed fetching, parsing, normalisation, deduplication, topic tagging, story clustering and scheduling.

pub mod cluster;
pub mod eval;
pub mod normalize;
pub mod parse;
pub mod text;
pub mod topics;
