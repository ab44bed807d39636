//! L6: each map write the store applies does what its kind says, judged by the store node as it
//! applies it, against this model written apart from keel's own `apply_write`.
//!
//! L1 (linearizability) checks a map's history against keel's own write semantics, so a store
//! whose semantics are wrong agrees with its own specification: a `Delete` of an absent key that
//! "applies" (blind-spot hunt, round 27, B #4: the caller told it deleted something, every replica
//! sent a deletion of nothing) or a compare-and-set that also creates a missing key (B #7: a lock
//! taken over from a value someone deleted). Here each write is judged against the value the
//! store held just before it (read in place: nothing runs between that read and the write).

use keel::store::{LIST_SEPARATOR, MapWrite, list_items};

/// What `write` does to a key holding `before`: `None` when it must not apply, else the value
/// after it (`None`: deleted).
pub fn expected(before: Option<&str>, write: &MapWrite) -> Option<Option<String>> {
    match write {
        MapWrite::Set(v) => Some(Some(v.clone())),
        MapWrite::SetIfAbsent(v) => match before {
            None => Some(Some(v.clone())),
            Some(_) => None,
        },
        MapWrite::CompareAndSet { expected, new } => (before == Some(expected)).then(|| Some(new.clone())),
        MapWrite::CompareAndDelete(expected) => (before == Some(expected)).then_some(None),
        MapWrite::Delete => before.map(|_| None),
        MapWrite::Append(items) if items.is_empty() => None,
        MapWrite::Append(items) => {
            let mut list: Vec<&str> = before.map(list_items).unwrap_or_default();
            list.extend(items.iter().map(String::as_str));
            Some(Some(list.join(&LIST_SEPARATOR.to_string())))
        }
        MapWrite::Remove(items) => {
            let list = list_items(before?);
            let kept: Vec<&str> = list.iter().copied().filter(|i| !items.iter().any(|r| r == i)).collect();
            if kept.len() == list.len() {
                return None; // nothing to remove
            }
            Some((!kept.is_empty()).then(|| kept.join(&LIST_SEPARATOR.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_applies_only_as_it_says() {
        let s = |v: &str| v.to_owned();
        assert_eq!(expected(None, &MapWrite::Delete), None, "nothing to delete");
        assert_eq!(expected(Some("a"), &MapWrite::Delete), Some(None));
        let cas = MapWrite::CompareAndSet { expected: s("a"), new: s("b") };
        assert_eq!(expected(None, &cas), None, "a compare-and-set never creates");
        assert_eq!(expected(Some("a"), &cas), Some(Some(s("b"))));
        assert_eq!(expected(Some("x"), &MapWrite::SetIfAbsent(s("y"))), None);
        assert_eq!(expected(Some("x"), &MapWrite::CompareAndDelete(s("x"))), Some(None));
        let sep = LIST_SEPARATOR.to_string();
        assert_eq!(expected(Some("a"), &MapWrite::Append(vec![s("b")])), Some(Some(format!("a{sep}b"))));
        assert_eq!(expected(Some("a"), &MapWrite::Remove(vec![s("a")])), Some(None), "the last item: the key goes");
        assert_eq!(expected(Some("a"), &MapWrite::Remove(vec![s("z")])), None);
        assert_eq!(expected(None, &MapWrite::Append(vec![])), None);
    }
}
