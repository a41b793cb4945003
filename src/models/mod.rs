//! Local models: the catalog (`models/catalog.toml`) and choosing the model for a machine.
//! Provisioning (`models pull`) and inference arrive next; nothing outside `llm/` will import
//! candle.

pub(crate) mod catalog;
pub(crate) mod select;
