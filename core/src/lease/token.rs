//! The lease token, as keel writes it into the store: `owner:incarnation:seq`.
//!
//! The incarnation is the store's time when the owner started (so two processes with the same
//! owner name never share a token) and `seq` counts the owner's tokens (a fresh one for every
//! acquisition after a grant ends). Tools that read the store's lease keys (a checker, an
//! operator's script) parse them here rather than splitting strings of their own.

use std::fmt;

/// A lease token's parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token<'a> {
    /// The owner's name (it may itself contain `:`).
    pub owner: &'a str,
    /// The store's time (ms) at the owner's start: one process's owner.
    pub incarnation: u64,
    /// The owner's token number within its incarnation.
    pub seq: u64,
}

impl<'a> Token<'a> {
    /// The parts of `token`, or `None` if keel did not write it.
    ///
    /// ```
    /// use keel::lease::Token;
    /// let t = Token::parse("node:a:1767225600031:3").unwrap();
    /// assert_eq!((t.owner, t.incarnation, t.seq), ("node:a", 1767225600031, 3));
    /// assert_eq!(t.to_string(), "node:a:1767225600031:3");
    /// assert!(Token::parse("garbage").is_none());
    /// ```
    pub fn parse(token: &'a str) -> Option<Self> {
        let (rest, seq) = token.rsplit_once(':')?;
        let (owner, incarnation) = rest.rsplit_once(':')?;
        Some(Token { owner, incarnation: incarnation.parse().ok()?, seq: seq.parse().ok()? })
    }

    /// Whether `other` was written by the same owner instance (owner and incarnation).
    pub fn same_instance(&self, other: &Token<'_>) -> bool {
        self.owner == other.owner && self.incarnation == other.incarnation
    }
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.owner, self.incarnation, self.seq)
    }
}
