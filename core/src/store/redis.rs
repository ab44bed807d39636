//! placeholder
#![allow(missing_docs)]
/// TODO
#[derive(Clone, Debug)]
pub struct RedisConfig;
/// TODO
#[derive(Clone, Debug)]
pub struct RedisStore;
