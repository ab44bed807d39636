//! Shared by the decoder targets: turn fuzz bytes into the RESP values Redis could send back.
//!
//! Half the inputs go through redis-rs's own RESP parser (so the target sees exactly what a
//! mangled reply on the wire would produce); the other half build a value tree directly from the
//! bytes, which reaches nested shapes the parser path rarely finds.

#![allow(dead_code)] // each target uses part of it

use arbitrary::{Arbitrary, Unstructured};
use keel::StoreError;
use keel::store::redis::decode::{Value, parse_redis_value};

/// Deepest value tree built from bytes.
const DEPTH_MAX: u32 = 4;

fn tree(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let pick: u8 = u.arbitrary()?;
    Ok(match pick % 8 {
        0 => Value::Nil,
        1 => Value::Int(u.arbitrary()?),
        2 => Value::BulkString(u.arbitrary::<Vec<u8>>()?),
        3 => Value::SimpleString(u.arbitrary()?),
        4 => Value::Okay,
        // Small decimal strings, where the interesting boundaries are.
        5 => Value::BulkString(u.arbitrary::<u64>()?.to_string().into_bytes()),
        6 => Value::BulkString(["G", "H", "Q", "0", "1", "-1", "+5", "05", ""][usize::from(pick / 8) % 9].into()),
        _ if depth >= DEPTH_MAX => Value::Nil,
        _ => {
            let n = usize::from(u.arbitrary::<u8>()? % 6);
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(tree(u, depth + 1)?);
            }
            Value::Array(items)
        }
    })
}

/// A value from the input, or None when the bytes do not make one.
pub fn value(data: &[u8]) -> Option<Value> {
    let (&first, rest) = data.split_first()?;
    if first % 2 == 0 {
        parse_redis_value(rest).ok()
    } else {
        tree(&mut Unstructured::new(rest), 0).ok()
    }
}

/// Every failure of a decoder must be a Corrupt naming a key (never another error kind, never a
/// panic); returns whether it decoded.
pub fn check<T>(r: Result<T, StoreError>, key_prefix: &str) -> bool {
    match r {
        Ok(_) => true,
        Err(StoreError::Corrupt { key, detail }) => {
            assert!(key.starts_with(key_prefix), "Corrupt names {key:?}, expected {key_prefix}…");
            assert!(detail.len() <= 512, "an error's detail is bounded, got {} bytes", detail.len());
            false
        }
        Err(other) => panic!("a decoder failed with {other:?}, not Corrupt"),
    }
}

/// A stored pool value: a key and a value, split from the input.
#[derive(Arbitrary, Debug)]
pub struct Stored<'a> {
    pub key: &'a str,
    pub raw: &'a str,
}
