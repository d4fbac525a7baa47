//! Sea-orm entities, one module per table. Private to the store: other crates get domain types.

pub(crate) mod key_material;
