//! Local models: the catalog (`models/catalog.toml`), choosing the model for a machine, and
//! provisioning (`models pull`, installed files and their hashes). Nothing outside `llm/`
//! will import candle.

pub(crate) mod catalog;
pub(crate) mod pull;
pub(crate) mod select;
pub(crate) mod store;
