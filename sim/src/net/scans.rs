//! L8: each map scan slice the store serves is the slice its cursor asks for, judged by the store
//! node as it serves it, against this model written apart from keel's own `map_scan`.
//!
//! No other rule reads a scan as the store serves it: L1 records no scan (a slice's keys are
//! known only from its reply, see `Op::recorded`), and L1's specification is keel's own
//! `StoreState` anyway. Keel's stores promise the stronger form of HSCAN's contract that
//! `StoreState::map_scan` documents: a slice holds the next `count` keys after the cursor's (in
//! key order, with the values they hold), and its cursor says more follows exactly when a key
//! does. A last slice that hands out a cursor anyway (hunt 48 B's survivor 375, MC464) costs
//! every pass one more round trip, which no caller's outcome shows; a cursor that ends the pass
//! early loses the keys after it.

use std::collections::BTreeMap;

use keel::store::MAP_SCAN_START;

/// The key a scan cursor resumes after, decoded apart from keel's `cursor_key`: `Ok(None)` at the
/// start of a pass, `Err(())` for a string that is no cursor (the store must refuse it, which
/// L8 does not judge).
#[allow(clippy::result_unit_err)]
pub fn resumes_after(cursor: &str) -> Result<Option<String>, ()> {
    if cursor == MAP_SCAN_START {
        return Ok(None);
    }
    let hex = cursor.strip_prefix('k').ok_or(())?;
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.is_ascii() {
        return Err(());
    }
    let bytes = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| ()))
        .collect::<Result<Vec<u8>, ()>>()?;
    String::from_utf8(bytes).map(Some).map_err(|_| ())
}

/// What is wrong with a slice of `count` entries served as `entries` with a last-slice cursor
/// (`last`), where `held_after` is every entry the map held after the cursor's key when the slice
/// was served; `None` if nothing is.
pub fn slice_wrong(
    held_after: &BTreeMap<String, String>,
    count: usize,
    entries: &BTreeMap<String, String>,
    last: bool,
) -> Option<String> {
    let expected: BTreeMap<&String, &String> = held_after.iter().take(count).collect();
    let got: BTreeMap<&String, &String> = entries.iter().collect();
    if got != expected {
        let keys = |m: &BTreeMap<&String, &String>| m.keys().map(|k| k.as_str()).collect::<Vec<_>>().join(",");
        return Some(format!(
            "it held [{}] (values as read) where the map's next {count} keys after the cursor are [{}]",
            keys(&got),
            keys(&expected)
        ));
    }
    let more = held_after.len() > count;
    match (last, more) {
        (true, true) => {
            Some(format!("its cursor ended the pass with {} keys after the slice's last", held_after.len() - count))
        }
        (false, false) => Some("its cursor said more follows where no key does: an empty slice owed".to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(keys: &[&str]) -> BTreeMap<String, String> {
        keys.iter().map(|k| (k.to_string(), format!("v{k}"))).collect()
    }

    #[test]
    fn cursors_decode_apart_from_keel() {
        assert_eq!(resumes_after(MAP_SCAN_START), Ok(None));
        assert_eq!(resumes_after("k622062"), Ok(Some("b b".to_owned())));
        assert_eq!(resumes_after("kc3be"), Ok(Some("\u{fe}".to_owned())));
        for garbage in ["", "k", "k6", "kzz", "x61", "kff", "1"] {
            assert_eq!(resumes_after(garbage), Err(()), "{garbage:?}");
        }
    }

    /// A slice is judged on its keys, its values and its cursor (hunt 48 B's survivor 375: a
    /// last slice that says more follows, MC464).
    #[test]
    fn a_slice_that_misstates_the_map_fires_l8() {
        let held = map(&["a", "b", "c"]);
        assert_eq!(slice_wrong(&held, 2, &map(&["a", "b"]), false), None, "a first slice of two");
        assert_eq!(slice_wrong(&held, 3, &map(&["a", "b", "c"]), true), None, "the whole map, last");
        assert_eq!(slice_wrong(&map(&[]), 3, &map(&[]), true), None, "an empty map");
        // MC464: the last slice hands out a cursor.
        assert!(slice_wrong(&held, 3, &map(&["a", "b", "c"]), false).is_some());
        assert!(slice_wrong(&held, 5, &map(&["a", "b", "c"]), false).is_some());
        // A cursor that ends the pass early.
        assert!(slice_wrong(&held, 2, &map(&["a", "b"]), true).is_some());
        // A key skipped, one too many, a value not the one held.
        assert!(slice_wrong(&held, 2, &map(&["a", "c"]), false).is_some());
        assert!(slice_wrong(&held, 2, &map(&["a", "b", "c"]), true).is_some());
        let mut wrong = map(&["a", "b"]);
        wrong.insert("a".into(), "x".into());
        assert!(slice_wrong(&held, 2, &wrong, false).is_some());
    }
}
